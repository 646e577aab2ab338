"""How long one non-blocking stepper step takes, snapshot included (bound: median 20 ms).

Every step of the basic scenario is a non-blocking call on loopback; the scenario is run
many times and the median and 95th percentile per step are printed.
Run: python benchmarks/stepper_step.py [--rounds 30]
"""

from __future__ import annotations

import argparse
import statistics
import time

from handshake_lab.stepper.engine import Stepper

BOUND_MS = 20.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=30)
    args = parser.parse_args()
    durations: dict[str, list[float]] = {}
    with Stepper("basic") as stepper:
        for _ in range(args.rounds):
            stepper.reset()
            while not stepper.snapshot().finished:
                start = time.perf_counter()
                snapshot = stepper.step()
                elapsed = (time.perf_counter() - start) * 1e3
                assert not snapshot.pending, f"{snapshot.step} blocked"
                durations.setdefault(snapshot.step, []).append(elapsed)
    every = [d for values in durations.values() for d in values]
    for label, values in durations.items():
        print(f"{label:<24} median {statistics.median(values):6.2f} ms")
    median = statistics.median(every)
    p95 = statistics.quantiles(every, n=20)[-1]
    print(
        f"all steps: median {median:.2f} ms, 95th percentile {p95:.2f} ms "
        f"(bound: median {BOUND_MS:g} ms) {'OK' if median <= BOUND_MS else 'OVER'}"
    )
    return 0 if median <= BOUND_MS else 1


if __name__ == "__main__":
    raise SystemExit(main())
