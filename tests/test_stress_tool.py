"""tools/stress.py: failures are named from pytest's own reports, the summary counts them per
phase and suite, and a round runs what `make test` runs."""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location("stress_tool", ROOT / "tools" / "stress.py")
stress = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(stress)

SAMPLE_TESTS = """
import pytest

def test_passes():
    pass

def test_fails():
    assert 1 == 2

@pytest.mark.parametrize("n", [1, 2])
def test_one_of_two_fails(n):
    assert n == 1

@pytest.fixture
def broken():
    raise RuntimeError("setup broke")

def test_with_a_broken_fixture(broken):
    pass
"""


def test_failures_are_read_from_a_real_pytest_report(tmp_path):
    (tmp_path / "test_sample.py").write_text(SAMPLE_TESTS)
    report = tmp_path / "report.xml"
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"--junitxml={report}"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 1, done.stdout + done.stderr
    tests, failed = stress.failed_tests(report.read_text())
    assert tests == 5
    assert failed == [
        "test_sample::test_fails",
        "test_sample::test_one_of_two_fails[2]",
        "test_sample::test_with_a_broken_fixture",
    ]


def test_a_run_without_a_failed_test_is_blamed_on_its_exit_status():
    assert stress.blame(0, []) == ()
    assert stress.blame(1, ["t::a"]) == ("t::a",)
    assert stress.blame(5, []) == ("pytest exit 5",)  # nothing collected proves nothing
    assert stress.blame(-1, []) == ("pytest exit -1",)
    assert "without a failed test" in stress.blame(1, [])[0]


def test_the_summary_counts_rounds_and_names_each_failure_with_its_rounds():
    def run(phase, number, suite, failed=()):
        return stress.Run(phase, number, suite, 1 if failed else 0, 10, tuple(failed), 3.0)

    runs = [
        run("quiet", 1, "package"),
        run("quiet", 1, "notebooks"),
        run("quiet", 2, "package", ["tests.test_a::test_x"]),
        run("quiet", 2, "notebooks"),
        run("loaded", 1, "package", ["tests.test_a::test_x", "tests.test_b::test_y"]),
    ]
    text = stress.summary(runs)
    assert "quiet  package     2 rounds, 1 failed" in text
    assert "quiet  notebooks   2 rounds, 0 failed" in text
    assert "loaded package     1 rounds, 1 failed" in text
    assert "tests.test_a::test_x: 2x (quiet 2, loaded 1)" in text
    assert "tests.test_b::test_y: 1x (loaded 1)" in text
    assert stress.summary(runs[:2]).endswith("no failures")


def test_a_round_runs_what_make_test_runs():
    makefile = (ROOT / "Makefile").read_text()
    package = re.search(r"^test-package:.*\n\t(.+)$", makefile, re.MULTILINE).group(1)
    notebooks = re.search(r"^test-notebooks:.*\n\t(.+)$", makefile, re.MULTILINE).group(1)
    assert '-m "not browser" tests' in package
    assert stress.SUITES["package"][:2] == ["-m", "not browser"]
    assert stress.SUITES["package"][-1] == "tests"
    assert "$(NBVAL_FLAGS) notebooks" in notebooks
    assert "NBVAL_FLAGS := @notebooks/nbval.args" in makefile
    assert stress.SUITES["notebooks"] == ["@notebooks/nbval.args", "notebooks"]


def test_busy_cores_spin_and_stop():
    with stress.busy_cores(2) as spinners:
        assert len(spinners) == 2
        assert all(spinner.poll() is None for spinner in spinners)  # running
        assert all(spinner.args[-1] == stress._BUSY_LOOP for spinner in spinners)
    assert all(spinner.returncode is not None for spinner in spinners)  # stopped and reaped
