"""What a forgotten Recorder or Stepper costs while nothing happens: the CPU time of this whole
process over a quiet period, with 1 and with 20 of them left open, less the same process
with none (a notebook where `r = Recorder(); r.__enter__()` was never exited, or a Stepper
never closed).

Each one is left alone for a settling time first (what a learner's next cell meets), then
the process's CPU time (time.process_time: every thread) is read over `--seconds` while the
main thread sleeps. The Recorder records helper calls (a LoopbackServer listens, one
connection made and closed); the Stepper has taken its first step (listen), without packet
capture, which is a thread of its own. Bound: at most 0.5% of a core per forgotten one.
Run: python benchmarks/idle_sampler.py [--seconds 2] [--settle 2]
"""

from __future__ import annotations

import argparse
import contextlib
import time

from handshake_lab.net.clients import close, connect
from handshake_lab.net.server import LoopbackServer
from handshake_lab.record.recorder import Recorder
from handshake_lab.stepper.engine import Stepper

BOUND_PERCENT = 0.5  # of one core, per forgotten Recorder or Stepper


def forgotten_recorder(stack: contextlib.ExitStack) -> None:
    recorder = Recorder()
    recorder.__enter__()  # never exited by the "learner"; the ExitStack cleans up at the end
    stack.callback(recorder.stop)
    server = stack.enter_context(LoopbackServer(auto_accept=False))
    client = connect(server.address)
    close(server.accept())
    close(client)


def forgotten_stepper(stack: contextlib.ExitStack) -> None:
    stepper = Stepper("basic", capture_packets=False)
    stack.callback(stepper.close)
    stepper.step()  # server.listen()


def cpu_percent(seconds: float) -> float:
    """This process's CPU time over `seconds` of the main thread sleeping, in % of one core."""
    cpu, wall = time.process_time(), time.monotonic()
    time.sleep(seconds)
    return (time.process_time() - cpu) / (time.monotonic() - wall) * 100


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--settle", type=float, default=2.0)
    args = parser.parse_args()
    time.sleep(args.settle)
    baseline = cpu_percent(args.seconds)
    print(f"nothing open:            {baseline:6.2f}% of a core")
    worst = 0.0
    for kind, make in (("Recorder", forgotten_recorder), ("Stepper", forgotten_stepper)):
        for count in (1, 20):
            with contextlib.ExitStack() as stack:
                for _ in range(count):
                    make(stack)
                time.sleep(args.settle)
                used = cpu_percent(args.seconds)
            each = max(0.0, used - baseline) / count
            worst = max(worst, each)
            print(
                f"{count:2d} forgotten {kind + 's' if count > 1 else kind:<9}: "
                f"{used:6.2f}% of a core, {each:5.2f}% each"
            )
    ok = worst <= BOUND_PERCENT
    print(
        f"worst: {worst:.2f}% of a core per forgotten one (bound {BOUND_PERCENT}%) "
        f"{'OK' if ok else 'OVER'}"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
