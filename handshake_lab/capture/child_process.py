"""Run one of the lab's modules in a fresh Python process and read its one-line JSON report.

The namespace experiments need a fresh process: unshare(CLONE_NEWUSER | CLONE_NEWNET) fails with
EINVAL in a multi-threaded one (a Jupyter kernel). Each such child prints one line of JSON,
{"ok": true, ...} or {"ok": false, "stage": ..., "error": ...}, as its last line on stdout.
Rules: the child finds this package even when it is not installed (PYTHONPATH); it gets
CAPTURE_TIMEOUT; every way it can fail becomes a report with "ok": false, never an exception.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from ..timeouts import CAPTURE_TIMEOUT

__all__ = ["report_from_private_network", "run_json_child"]


def run_json_child(module: str, *arguments: str) -> dict:
    """``python -m module arguments`` in a fresh process; its report, or one saying what failed."""
    environment = dict(os.environ)
    package_parent = str(Path(__file__).resolve().parent.parent.parent)
    environment["PYTHONPATH"] = os.pathsep.join(
        filter(None, [package_parent, environment.get("PYTHONPATH")])
    )
    try:
        completed = subprocess.run(
            [sys.executable, "-m", module, *arguments],
            capture_output=True,
            text=True,
            timeout=CAPTURE_TIMEOUT,
            env=environment,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return {"ok": False, "stage": "experiment", "error": f"no answer in {CAPTURE_TIMEOUT} s"}
    except OSError as error:  # e.g. this Python cannot be started again by this user
        return {"ok": False, "stage": "experiment", "error": f"cannot start {module}: {error}"}
    try:
        report = json.loads(completed.stdout.strip().splitlines()[-1])
        if not isinstance(report, dict) or "ok" not in report:
            raise ValueError(f"not a report: {report!r}")
    except (IndexError, ValueError):
        last_error = (completed.stderr.strip().splitlines() or ["no output"])[-1]
        return {"ok": False, "stage": "experiment", "error": last_error}
    return report


def report_from_private_network(
    experiment: Callable[[], dict], *, errors: tuple[type[BaseException], ...] = (OSError,)
) -> int:
    """The child's side: enter a private user+network namespace, run `experiment` there and
    print its report as the one JSON line the parent reads (its exit status is returned)."""
    from .namespace_child import enter_private_network

    try:
        enter_private_network()
    except OSError as error:
        _report(ok=False, stage="namespace", error=str(error))
        return 0
    try:
        fields = experiment()
    except errors as error:  # handed to the parent, which says what failed
        _report(ok=False, stage="experiment", error=repr(error))
        return 1
    _report(ok=True, **fields)
    return 0


def _report(**fields: object) -> None:
    sys.stdout.write(json.dumps(fields) + "\n")
    sys.stdout.flush()
