"""Notebook 07 in a course kernel whose address space is capped, as a memory-capped host may do.

The kernel is started with the course's kernel settings (lab-settings/ipython_kernel_config.py)
by benchmarks/notebook_address_space.py, which sets RLIMIT_AS first so that the kernel inherits
it, runs every code cell and prints the kernel's VmPeak (shown with pytest -s).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [
    pytest.mark.kernel,
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="RLIMIT_AS and /proc"),
]

SCRIPT = Path(__file__).resolve().parent.parent / "benchmarks" / "notebook_address_space.py"
#: The cap a memory-capped host may set: RLIMIT_AS = 1.2 GiB.
CAP = int(1.2 * 2**30)


def test_notebook_07_runs_in_a_course_kernel_capped_at_1_2_gib():
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--cap", str(CAP), "07-many-clients"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    print(result.stdout)
    assert "07-many-clients" in result.stdout and "FAILED" not in result.stdout, (
        result.stdout + result.stderr[-3000:]
    )
