"""Run All, then Run All again, in one kernel: every course notebook must raise nothing.

A learner re-runs cells in any order; servers bound to a fixed port, a second recorder or
leftover threads would break the second pass ("Address already in use" is a bug here).
Each notebook runs in a child process, so the Jupyter client's own event loop and sockets
stay out of this test process.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.kernel

NOTEBOOKS = sorted((Path(__file__).parent.parent / "notebooks").glob("[0-9][0-9]-*.ipynb"))

RUN_TWICE = """
import sys, nbformat
from nbclient import NotebookClient
path = sys.argv[1]
notebook = nbformat.read(path, as_version=4)
client = NotebookClient(notebook, timeout=120, kernel_name="python3",
                        resources={"metadata": {"path": sys.argv[2]}})
with client.setup_kernel():
    for run in (1, 2):
        for index, cell in enumerate(notebook.cells):
            if cell.cell_type == "code":
                cell.outputs = []
                client.execute_cell(cell, index)  # raises CellExecutionError on an error
print("both runs raised nothing")
"""


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[path.stem for path in NOTEBOOKS])
def test_run_all_twice_in_one_kernel(path):
    result = subprocess.run(
        [sys.executable, "-c", RUN_TWICE, str(path), str(path.parent)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "both runs raised nothing" in result.stdout
