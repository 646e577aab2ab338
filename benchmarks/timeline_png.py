"""How long the stepper widget waits for its timeline picture: timeline_png on a recorded
basic scenario (the widget draws one after every click), drawn with idle stretches cut short
as the widget draws it (plot_timeline's compress_idle_over) and, for comparison, linearly.
Run: python benchmarks/timeline_png.py [--runs 20] [--compress-idle-over 0.2]
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
    parser.add_argument("--compress-idle-over", type=float, default=0.2)
    args = parser.parse_args()
    with Stepper("basic", capture_packets=False) as stepper:
        while not stepper.snapshot().finished:
            stepper.step()
        recording = stepper.recording
    start = time.perf_counter()
    timeline_png(recording)
    first = (time.perf_counter() - start) * 1e3
    print(f"first timeline_png (imports matplotlib, loads fonts): {first:.0f} ms")
    for name, options in (
        (
            f"compress_idle_over={args.compress_idle_over:g}",
            {"compress_idle_over": args.compress_idle_over},
        ),
        ("linear", {}),
    ):
        times = []
        for _ in range(args.runs):
            start = time.perf_counter()
            timeline_png(recording, **options)
            times.append((time.perf_counter() - start) * 1e3)
        print(f"{name}: median {statistics.median(times):.0f} ms, max {max(times):.0f} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
