"""Run every benchmark, one after the other, and say which met its bound.

Run: python benchmarks/run_all.py   (or `make bench`)
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

BENCHMARKS = [
    "recorder_overhead.py",  # first: the others leave TIME_WAIT rows behind for 60 s
    "import_time.py",
    "stepper_step.py",
    "sampler_resolution.py",
    "lookup_while_closing.py",  # a measurement, no bound: why the recorder asks twice
    "idle_sampler.py",
    "timeline_png.py",
    "notebook_address_space.py",
    "recorder_busy_machine.py",  # it leaves 10,000 TIME_WAIT rows for 60 s
    "states_port.py",  # last: it makes a big table on purpose (14,000 TIME_WAIT rows)
]


def main() -> int:
    here = Path(__file__).parent
    failed = []
    for name in BENCHMARKS:
        print(f"== {name}", flush=True)
        if subprocess.run([sys.executable, str(here / name)], check=False).returncode:
            failed.append(name)
    print(
        f"\n{len(BENCHMARKS) - len(failed)} of {len(BENCHMARKS)} benchmarks within their bounds"
        + (f"; over: {', '.join(failed)}" if failed else "")
    )
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
