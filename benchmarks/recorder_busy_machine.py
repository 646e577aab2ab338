"""The Recorder's cost must not grow with unrelated sockets: sample cost with and without
10,000 TIME_WAIT rows in the kernel's table (a busy learner machine, or notebook 07).

Sampling looks each lab connection up by its addresses (NETLINK_SOCK_DIAG exact lookup, a
hash-table lookup in the kernel), so it should cost the same either way; reading
/proc/net/tcp, for contrast, grows with every row. The TIME_WAIT rows are made on loopback
by this script (connect, accept, client closes first) and expire 60 s later by themselves.
Run: python benchmarks/recorder_busy_machine.py [--rows 10000]
"""

from __future__ import annotations

import argparse
import socket
import statistics
import time

from handshake_lab.kernel.proc_tcp import read_tcp_table
from handshake_lab.net.clients import close, connect
from handshake_lab.net.server import LoopbackServer
from handshake_lab.record.recorder import Recorder

BOUND = 1.5  # "does not grow": allow measurement noise, not growth with the row count


def sample_cost_us(samples: int = 300) -> float:
    """Median cost of one Recorder.sample() with a listener and two live connections."""
    with Recorder(interval=3600) as recorder, LoopbackServer(auto_accept=False) as server:
        clients = [connect(server.address) for _ in range(2)]
        accepted = [server.accept() for _ in clients]
        close(clients[0])  # one lane known only by its addresses (FIN_WAIT2 now)
        times = []
        for _ in range(samples):
            start = time.perf_counter()
            recorder.sample()
            times.append(time.perf_counter() - start)
        for sock in clients[1:] + accepted:
            close(sock)
    return statistics.median(times) * 1e6


def proc_read_ms() -> float:
    start = time.perf_counter()
    read_tcp_table()
    return (time.perf_counter() - start) * 1e3


def make_time_wait_rows(count: int) -> None:
    with socket.create_server(("127.0.0.1", 0), backlog=1024) as listener:
        address = listener.getsockname()
        for _ in range(count):
            client = socket.create_connection(address, timeout=5)
            server_side, _ = listener.accept()
            client.close()  # the active closer ends in TIME_WAIT
            server_side.close()


def time_wait_rows() -> int:
    return sum(1 for row in read_tcp_table() if row.state.name == "TIME_WAIT")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000)
    args = parser.parse_args()
    before_rows = time_wait_rows()
    quiet, quiet_proc = sample_cost_us(), proc_read_ms()
    make_time_wait_rows(args.rows)
    busy_rows = time_wait_rows()
    busy, busy_proc = sample_cost_us(), proc_read_ms()
    print(f"TIME_WAIT rows: {before_rows} -> {busy_rows}")
    print(f"Recorder.sample():        {quiet:7.1f} µs -> {busy:7.1f} µs  ({busy / quiet:.2f}x)")
    print(
        f"reading /proc/net/tcp:    {quiet_proc:7.2f} ms -> {busy_proc:7.2f} ms  "
        f"({busy_proc / quiet_proc:.1f}x, for contrast)"
    )
    ok = busy / quiet <= BOUND
    print("OK: the recorder's cost does not grow" if ok else "GREW")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
