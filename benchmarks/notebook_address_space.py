"""The most address space a course kernel reserves while it runs each notebook (bound: 1 GiB).

A host may cap a kernel's memory by its address space (RLIMIT_AS): the first thread or mmap
that does not fit then fails ("can't start new thread"). Each notebook runs, every code cell
in order, in a fresh kernel of this Python started with the course's kernel settings
(lab-settings/ipython_kernel_config.py, as `make lab` and Binder's postBuild install them);
then the kernel reads its VmPeak (the most address space it ever had), VmSize and thread
count from /proc/self/status. ``--cap BYTES`` sets RLIMIT_AS here first, so the kernels
inherit it and the run shows whether the notebooks fit under that cap. Linux only.
Run: python benchmarks/notebook_address_space.py [--cap BYTES] [STEM ...]   (default: all)
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

import nbformat
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = ROOT / "notebooks"
KERNEL_CONFIG = ROOT / "lab-settings" / "ipython_kernel_config.py"
BOUND_MIB = 1024
CELL_TIMEOUT = 120

_PROBE = """
import json as _json
with open("/proc/self/status", encoding="ascii") as _status:
    _fields = dict(_line.split(":", 1) for _line in _status if ":" in _line)
print(_json.dumps({key: _fields[key].strip() for key in ("VmPeak", "VmSize", "Threads")}))
"""


def _mib(field: str) -> int:
    """'123456 kB' -> MiB."""
    return int(field.split()[0]) // 1024


def measure(path: Path) -> dict[str, str]:
    """Run every code cell of the notebook at `path` in a course kernel; its /proc status."""
    notebook = nbformat.read(path, as_version=4)
    notebook.cells.append(nbformat.v4.new_code_cell(_PROBE))
    client = NotebookClient(
        notebook,
        timeout=CELL_TIMEOUT,
        kernel_name="python3",
        extra_arguments=[f"--config={KERNEL_CONFIG}"],
        resources={"metadata": {"path": str(path.parent)}},
    )
    client.execute()
    return json.loads(notebook.cells[-1].outputs[-1]["text"])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cap", type=int, help="RLIMIT_AS for the kernels, in bytes")
    parser.add_argument("stems", nargs="*", help="notebooks to run, e.g. 07-many-clients")
    args = parser.parse_args()
    if not sys.platform.startswith("linux"):
        print("this reads /proc/self/status: run it on Linux")
        return 2
    paths = [NOTEBOOKS / f"{stem}.ipynb" for stem in args.stems] or sorted(
        NOTEBOOKS.glob("[0-9][0-9]-*.ipynb")
    )
    missing = [path.stem for path in paths if not path.is_file()]
    if missing:
        print(f"not notebooks of the course: {', '.join(missing)} (e.g. 07-many-clients)")
        return 2
    if args.cap:
        import resource

        _soft, hard = resource.getrlimit(resource.RLIMIT_AS)
        resource.setrlimit(resource.RLIMIT_AS, (args.cap, hard))
        print(f"RLIMIT_AS for the kernels: {args.cap / 2**30:.2f} GiB")
    failed = []
    for path in paths:
        try:
            status = measure(path)
        except Exception as error:  # a cell raised, timed out, or the kernel died: say which
            failed.append(path.stem)
            text = re.sub(r"\x1b\[[0-9;]*m", "", str(error)).strip() or type(error).__name__
            print(f"{path.stem:<40} FAILED: {text.splitlines()[-1]}", flush=True)
            continue
        peak = _mib(status["VmPeak"])
        print(
            f"{path.stem:<40} VmPeak {peak:5,} MiB, VmSize at the end {_mib(status['VmSize']):5,}"
            f" MiB, {status['Threads']} threads (bound {BOUND_MIB:,} MiB) "
            + ("OK" if peak <= BOUND_MIB else "OVER"),
            flush=True,
        )
        if peak > BOUND_MIB:
            failed.append(path.stem)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
