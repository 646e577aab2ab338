"""The flake harness (`make stress`): the package tests and strict nbval, round after round,
first on a quiet machine and then under CPU load, with every failure reported by test name.

A round runs the two suites `make test` runs without a browser: `pytest -m "not browser" tests`
and `pytest @notebooks/nbval.args notebooks`. Loaded rounds run while one busy process per core
spins (`while True: pass`), so the lab's threads must wait for a core, as on a busy shared
Binder host. Each run writes a JUnit XML report, read back for the names of the tests that failed;
a run that fails without a failing test (a crash, a timeout, nothing collected) is reported by
its pytest exit status. Reports, the output of failing runs and the summary (rewritten after
every run) are kept in test-artifacts/stress/.

Run: python tools/stress.py [--quiet-rounds 20] [--loaded-rounds 10] [--suite package|notebooks]
Exit status 1 if any run failed.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import os
import subprocess
import sys
import time
import xml.etree.ElementTree as ElementTree
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "test-artifacts" / "stress"
SUITES = {
    "package": ["-m", "not browser", "-p", "no:cacheprovider", "tests"],
    "notebooks": ["@notebooks/nbval.args", "notebooks"],
}
#: A run that takes longer than this is stopped and counted as a failure (a hang is a flake too).
RUN_TIMEOUT = 30 * 60
_BUSY_LOOP = "while True: pass"


class Run(NamedTuple):
    """One suite run in one round: what failed, and how long it took."""

    phase: str  # "quiet" or "loaded"
    round: int
    suite: str
    exit_status: int
    tests: int
    failed: tuple[str, ...]  # test ids, or "pytest exit N" when no test is to blame
    seconds: float

    @property
    def passed(self) -> bool:
        return self.exit_status == 0 and not self.failed


def failed_tests(junit_xml: str) -> tuple[int, list[str]]:
    """(tests run, ids of those that failed or errored) from a pytest JUnit XML report."""
    root = ElementTree.fromstring(junit_xml)
    tests, failed = 0, []
    for case in root.iter("testcase"):
        tests += 1
        if case.find("failure") is not None or case.find("error") is not None:
            where, name = case.get("classname", ""), case.get("name", "?")
            failed.append(f"{where}::{name}" if where else name)
    return tests, failed


def blame(exit_status: int, failed: list[str]) -> tuple[str, ...]:
    """The failures of a run: its failed tests, or its exit status when none is named."""
    if exit_status not in (0, 1) and not failed:
        return (f"pytest exit {exit_status}",)
    if exit_status == 1 and not failed:
        return ("pytest exit 1 without a failed test in its report",)
    return tuple(failed)


def summary(runs: list[Run]) -> str:
    """The report: runs per phase and suite, then each failing test with the rounds it failed in."""
    lines = []
    for phase in ("quiet", "loaded"):
        for suite in SUITES:
            mine = [run for run in runs if run.phase == phase and run.suite == suite]
            if mine:
                failures = sum(not run.passed for run in mine)
                slowest = max(run.seconds for run in mine)
                lines.append(
                    f"{phase:6} {suite:9} {len(mine):3} rounds, {failures} failed "
                    f"(slowest {slowest:.0f} s)"
                )
    where: dict[str, list[str]] = collections.defaultdict(list)
    for run in runs:
        for test in run.failed:
            where[test].append(f"{run.phase} {run.round}")
    if where:
        lines.append("failures by test:")
        for test, rounds in sorted(where.items()):
            lines.append(f"  {test}: {len(rounds)}x ({', '.join(rounds)})")
    else:
        lines.append("no failures")
    return "\n".join(lines)


@contextlib.contextmanager
def busy_cores(count: int) -> Iterator[list[subprocess.Popen]]:
    """`count` processes spinning on a core each, stopped on exit."""
    spinners = [subprocess.Popen([sys.executable, "-c", _BUSY_LOOP]) for _ in range(count)]
    try:
        yield spinners
    finally:
        for spinner in spinners:
            spinner.kill()
        for spinner in spinners:
            spinner.wait(timeout=10)


def run_suite(phase: str, number: int, suite: str) -> Run:
    """Run one suite once; keep its report, and its output when it failed."""
    report = ARTIFACTS / f"{phase}-{number:02}-{suite}.xml"
    report.unlink(missing_ok=True)
    command = [sys.executable, "-m", "pytest", *SUITES[suite], "-q", f"--junitxml={report}"]
    started = time.monotonic()
    try:
        done = subprocess.run(
            command, cwd=ROOT, capture_output=True, text=True, timeout=RUN_TIMEOUT, check=False
        )
        status, output = done.returncode, done.stdout + done.stderr
    except subprocess.TimeoutExpired as stuck:
        status = -1
        output = f"stopped after {RUN_TIMEOUT} s\n{stuck.stdout or ''}{stuck.stderr or ''}"
    seconds = time.monotonic() - started
    tests, failed = failed_tests(report.read_text()) if report.exists() else (0, [])
    if status == -1:
        failed.append(f"{suite} suite stuck for {RUN_TIMEOUT} s")
    run = Run(phase, number, suite, status, tests, blame(status, failed), seconds)
    if not run.passed:
        (ARTIFACTS / f"{phase}-{number:02}-{suite}.log").write_text(str(output))
    return run


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quiet-rounds", type=int, default=20)
    parser.add_argument("--loaded-rounds", type=int, default=10)
    parser.add_argument("--suite", choices=sorted(SUITES), action="append")
    parser.add_argument("--busy", type=int, default=os.cpu_count() or 1, help="busy processes")
    args = parser.parse_args()
    if args.quiet_rounds < 0 or args.loaded_rounds < 0 or args.busy < 1:
        parser.error("rounds must be 0 or more and --busy at least 1")
    suites = args.suite or list(SUITES)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    runs: list[Run] = []
    for phase, rounds in (("quiet", args.quiet_rounds), ("loaded", args.loaded_rounds)):
        load = busy_cores(args.busy) if phase == "loaded" else contextlib.nullcontext()
        with load:
            for number in range(1, rounds + 1):
                for suite in suites:
                    run = run_suite(phase, number, suite)
                    runs.append(run)
                    verdict = "passed" if run.passed else "FAILED: " + ", ".join(run.failed)
                    print(
                        f"{phase} {number}/{rounds} {suite}: {run.tests} tests in "
                        f"{run.seconds:.0f} s, {verdict}",
                        flush=True,
                    )
                    # after every run: a harness stopped half way still leaves its counts
                    (ARTIFACTS / "summary.txt").write_text(summary(runs) + "\n")
    print(summary(runs))
    return 0 if all(run.passed for run in runs) else 1


if __name__ == "__main__":
    raise SystemExit(main())
