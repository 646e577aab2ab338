"""Strict nbval over a notebook as JupyterLab saved it, for the browser tests.

A notebook a learner saves must still pass the checks `make test-notebooks` runs, so the
browser tests save from JupyterLab and run strict nbval (``@notebooks/nbval.args``) on the copy.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

#: One strict nbval run over a saved notebook.
NBVAL_TIMEOUT = 600.0


def run_strict_nbval(notebook: Path, nbval_args: Path) -> subprocess.CompletedProcess[str]:
    """Strict nbval with the flags `make test-notebooks` uses (``@notebooks/nbval.args``, whose
    paths are relative to the repository) on one notebook saved elsewhere."""
    command = [
        sys.executable,
        "-m",
        "pytest",
        f"@{nbval_args}",
        "-q",
        "--rootdir",
        str(notebook.parent),
        str(notebook),
    ]
    return subprocess.run(
        command,
        cwd=nbval_args.parent.parent,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=NBVAL_TIMEOUT,
    )


def assert_saved_notebook_passes_nbval(lab_page, saved_notebooks_dir: Path, nbval_args) -> None:
    """Save the open notebook from JupyterLab, copy it out, and run strict nbval on the copy."""
    saved = lab_page.save_and_copy(saved_notebooks_dir)
    result = run_strict_nbval(saved, nbval_args)
    assert result.returncode == 0, (
        f"{saved.name} as saved by JupyterLab fails strict nbval:\n"
        + result.stdout[-6000:]
        + result.stderr[-2000:]
    )
