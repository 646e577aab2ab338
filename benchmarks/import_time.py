"""What `import handshake_lab` adds to a bare interpreter start (bound: 50 ms), and proof that
it imports neither matplotlib nor ipywidgets.

Each start is a fresh process, run in this checkout (`python -c` imports the package from its
working directory first, so from elsewhere it would time another copy); the median of many
runs of each is compared.
Run: python benchmarks/import_time.py [--runs 20]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

#: The checkout this script belongs to: the processes run there.
ROOT = Path(__file__).resolve().parent.parent
BOUND_MS = 50.0
CHECK = (
    "import sys, handshake_lab; "
    "heavy = [m for m in ('matplotlib', 'ipywidgets', 'numpy') if m in sys.modules]; "
    "print(','.join(heavy))"
)


def start_time(code: str) -> float:
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, timeout=60, cwd=ROOT
    )
    return (time.perf_counter() - start) * 1e3


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    bare, with_lab = [], []
    for _ in range(args.runs):  # alternate, so both see the same machine load
        bare.append(start_time("pass"))
        with_lab.append(start_time("import handshake_lab"))
    added = statistics.median(with_lab) - statistics.median(bare)
    heavy = subprocess.run(
        [sys.executable, "-c", CHECK],
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    ).stdout.strip()
    print(f"bare interpreter start:        {statistics.median(bare):6.1f} ms (median)")
    print(f"with import handshake_lab:     {statistics.median(with_lab):6.1f} ms (median)")
    print(f"added by the import:           {added:6.1f} ms (bound {BOUND_MS:g} ms)")
    print(f"heavy modules imported:        {heavy or 'none'}")
    ok = added <= BOUND_MS and not heavy
    print("OK" if ok else "OVER")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
