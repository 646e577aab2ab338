"""How much a running Recorder costs: connect/accept/close cycles through the helpers with a
Recorder recording, against the same cycles on bare sockets, both measured in this one run.

Bound (issue "Foundation"): at most 1.5x. Rounds of the two loops alternate so that the
TIME_WAIT rows each leaves behind weigh on both alike; the figure is the ratio of totals.
Run: python benchmarks/recorder_overhead.py [--cycles 2000]
"""

from __future__ import annotations

import argparse
import socket
import statistics
import time

from handshake_lab.net.clients import close, connect
from handshake_lab.net.server import LoopbackServer
from handshake_lab.record.recorder import Recorder
from handshake_lab.timeouts import LOOPBACK_TIMEOUT

BOUND = 1.5


def bare_cycles(count: int) -> float:
    with socket.create_server(("127.0.0.1", 0)) as listener:
        address = listener.getsockname()
        listener.settimeout(LOOPBACK_TIMEOUT)
        start = time.perf_counter()
        for _ in range(count):
            client = socket.socket()
            client.settimeout(LOOPBACK_TIMEOUT)
            client.connect(address)
            server_side, _ = listener.accept()
            client.close()
            server_side.close()
        return time.perf_counter() - start


def recorded_cycles(count: int) -> tuple[float, int]:
    with Recorder() as recorder, LoopbackServer(auto_accept=False) as server:
        address = server.address
        start = time.perf_counter()
        for _ in range(count):
            client = connect(address)
            server_side = server.accept()
            close(client)
            close(server_side)
        elapsed = time.perf_counter() - start
    return elapsed, len(recorder.recording.events)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cycles", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=8)
    args = parser.parse_args()
    per_round = args.cycles // args.rounds
    bare = recorded = 0.0
    events = 0
    round_ratios = []
    for _ in range(args.rounds):
        bare_round = bare_cycles(per_round)
        elapsed, round_events = recorded_cycles(per_round)
        bare += bare_round
        recorded += elapsed
        events += round_events
        round_ratios.append(elapsed / bare_round)
    cycles = per_round * args.rounds
    ratio = recorded / bare
    print(f"bare sockets:             {bare / cycles * 1e6:6.1f} µs per cycle")
    print(
        f"helpers + Recorder:       {recorded / cycles * 1e6:6.1f} µs per cycle "
        f"({events} events recorded)"
    )
    print(
        f"per round: {min(round_ratios):.2f}x to {max(round_ratios):.2f}x "
        f"(median {statistics.median(round_ratios):.2f}x): this machine's noise"
    )
    print(f"ratio: {ratio:.2f}x (bound {BOUND}x) {'OK' if ratio <= BOUND else 'OVER'}")
    return 0 if ratio <= BOUND else 1


if __name__ == "__main__":
    raise SystemExit(main())
