"""How much a running Recorder costs: connect/accept/close cycles through the helpers with a
Recorder recording, against the same cycles on bare sockets, both measured in this one run.

Bound (issue "Foundation", tightened by issue 12): the median over rounds of the ratio
(helpers + Recorder) / bare sockets is at most 1.2. The cost is decomposed: the helpers alone
(argument checks, timeouts, the trace hook with nobody listening), the Recorder's share on the
caller's path (events appended, lanes registered: its sampler made too slow to run), then its
sampler thread (each connection's two ends looked up by address once closed, competing with
the caller for the GIL). The loops of a round run one after the other, and rounds repeat, so
that the TIME_WAIT rows each leaves behind weigh on all alike; the machine's noise shows in
the spread of the rounds.
Run: python benchmarks/recorder_overhead.py [--cycles 2000] [--rounds 20]
"""

from __future__ import annotations

import argparse
import contextlib
import socket
import statistics
import time

from handshake_lab.net.clients import close, connect
from handshake_lab.net.server import LoopbackServer
from handshake_lab.record.recorder import Recorder
from handshake_lab.timeouts import LOOPBACK_TIMEOUT

BOUND = 1.2
NEVER = 3600.0  # a sampling interval that never comes within a round: calls only


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


def helper_cycles(count: int, recorder: Recorder | None) -> float:
    with recorder or contextlib.nullcontext(), LoopbackServer(auto_accept=False) as server:
        address = server.address
        start = time.perf_counter()
        for _ in range(count):
            client = connect(address)
            server_side = server.accept()
            close(client)
            close(server_side)
        return time.perf_counter() - start


LOOPS = {
    "bare sockets": bare_cycles,
    "helpers, no Recorder": lambda count: helper_cycles(count, None),
    "+ Recorder, sampler idle": lambda count: helper_cycles(count, Recorder(interval=NEVER)),
    "+ Recorder": lambda count: helper_cycles(count, Recorder()),
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cycles", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()
    per_round = max(1, args.cycles // args.rounds)
    per_cycle: dict[str, list[float]] = {name: [] for name in LOOPS}
    for _ in range(args.rounds):
        for name, loop in LOOPS.items():
            per_cycle[name].append(loop(per_round) / per_round * 1e6)
    ratios = [
        recorded / bare
        for recorded, bare in zip(per_cycle["+ Recorder"], per_cycle["bare sockets"], strict=True)
    ]
    bare_median = statistics.median(per_cycle["bare sockets"])
    bare_best = min(per_cycle["bare sockets"])
    print(f"{per_round} cycles per loop, {args.rounds} rounds; µs per cycle over the rounds:")
    for name, values in per_cycle.items():
        median, best = statistics.median(values), min(values)
        print(
            f"  {name:<26} median {median:6.1f} µs ({median / bare_median:4.2f}x bare), "
            f"best {best:6.1f} µs ({best / bare_best:4.2f}x)"
        )
    median = statistics.median(ratios)
    print(
        f"(helpers + Recorder) / bare, per round: {min(ratios):.2f}x to {max(ratios):.2f}x, "
        f"median {median:.2f}x (bound {BOUND}x) {'OK' if median <= BOUND else 'OVER'}"
    )
    return 0 if median <= BOUND else 1


if __name__ == "__main__":
    raise SystemExit(main())
