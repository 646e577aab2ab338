"""How long the stepper widget waits for its timeline picture: timeline_png on a recorded
basic scenario (the widget draws one after every click).
Run: python benchmarks/timeline_png.py [--runs 20]
"""

from __future__ import annotations

import argparse
import statistics
import time

from handshake_lab.show.timeline_plot import timeline_png
from handshake_lab.stepper.engine import Stepper


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    with Stepper("basic", capture_packets=False) as stepper:
        while not stepper.snapshot().finished:
            stepper.step()
        recording = stepper.recording
    start = time.perf_counter()
    timeline_png(recording)
    first = (time.perf_counter() - start) * 1e3
    times = []
    for _ in range(args.runs):
        start = time.perf_counter()
        timeline_png(recording)
        times.append((time.perf_counter() - start) * 1e3)
    print(f"first timeline_png (imports matplotlib, loads fonts): {first:.0f} ms")
    print(f"after that: median {statistics.median(times):.0f} ms, max {max(times):.0f} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
