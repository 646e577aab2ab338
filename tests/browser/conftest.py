"""Fixtures for the real-browser tests: one JupyterLab per session, one fresh Chromium per test.

The tests here carry @pytest.mark.browser (`make test-browser`); they are skipped with a plain
reason when Debian's Chromium is not installed. JupyterLab serves a temporary copy of the
repository's notebooks/ so that notebooks saved by the browser never dirty the repository.
Screenshots (test-artifacts/screenshots/, made afresh each run) and the saved notebooks
(test-artifacts/saved-notebooks/) land in test-artifacts/ (gitignored; CI keeps it) for a human
to look at. `course_notebook` parametrizes a test over every NN-*.ipynb of the course.

HANDSHAKE_LAB_BROWSER_NOTEBOOKS may name another notebooks folder (used to check these tests
against scratch notebooks that follow the same widget contract).
"""

from __future__ import annotations

import os
import shutil
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from lab_page import CHROMIUM_MISSING, chromium_page, find_chromium  # noqa: E402  (not a package)
from lab_server import JupyterLab  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS_DIR = REPO_ROOT / "test-artifacts"


def course_notebooks_dir() -> Path:
    """The notebooks the browser tests open: notebooks/, or HANDSHAKE_LAB_BROWSER_NOTEBOOKS."""
    override = os.environ.get("HANDSHAKE_LAB_BROWSER_NOTEBOOKS")
    return Path(override).resolve() if override else REPO_ROOT / "notebooks"


def pytest_generate_tests(metafunc):
    """`course_notebook`: each NN-*.ipynb of the course, one test each."""
    if "course_notebook" in metafunc.fixturenames:
        names = sorted(path.name for path in course_notebooks_dir().glob("[0-9][0-9]-*.ipynb"))
        metafunc.parametrize("course_notebook", names)


def pytest_collection_modifyitems(config, items):
    if find_chromium() is not None:
        return
    skip = pytest.mark.skip(reason=CHROMIUM_MISSING)
    for item in items:
        if "browser" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def notebooks_dir() -> Path:
    return course_notebooks_dir()


@pytest.fixture(scope="session")
def artifacts_dir() -> Path:
    """test-artifacts/ with this run's screenshots and saved notebooks only."""
    for old_run in ("screenshots", "saved-notebooks"):
        shutil.rmtree(ARTIFACTS_DIR / old_run, ignore_errors=True)
    return ARTIFACTS_DIR


@pytest.fixture(scope="session")
def jupyterlab(notebooks_dir, tmp_path_factory):
    """A JupyterLab on 127.0.0.1 over a temp copy of notebooks/, one for the whole run;
    always stopped afterwards."""
    if find_chromium() is None:
        pytest.skip(CHROMIUM_MISSING)
    with JupyterLab(notebooks_dir, tmp_path_factory.mktemp("jupyterlab")) as lab:
        print(f"\nJupyterLab ready in {lab.start_seconds:.1f} s on port {lab.port}")
        yield lab


@pytest.fixture(scope="module")
def lab_browser(jupyterlab, artifacts_dir, request):
    """One headless Chromium (empty profile) with JupyterLab loaded, for a module's tests:
    loading JupyterLab takes seconds, opening a notebook in it does not."""
    with chromium_page(jupyterlab, artifacts_dir / "screenshots", request.module.__name__) as page:
        yield page


@pytest.fixture
def lab_page(lab_browser, jupyterlab, request):
    """The module's page for one test, with that test's evidence only; afterwards every
    document is closed and every kernel shut down, even when the test failed."""
    started = time.monotonic()
    lab_browser.begin(request.node.name)
    try:
        yield lab_browser
    finally:
        lab_browser.close_documents()
        jupyterlab.shutdown_kernels()
    print(f"\n{request.node.name}: browser part took {time.monotonic() - started:.1f} s")


@pytest.fixture
def saved_notebooks_dir(artifacts_dir) -> Path:
    """Where the notebooks saved by the browser are copied for a human to look at."""
    return artifacts_dir / "saved-notebooks"


@pytest.fixture
def nbval_args(notebooks_dir) -> Path:
    """notebooks/nbval.args: strict nbval's flags, the ones `make test-notebooks` uses."""
    for path in (notebooks_dir / "nbval.args", notebooks_dir / "sanitize.cfg"):
        if not path.is_file():
            pytest.fail(
                f"{path.name} is missing from notebooks/: strict nbval needs it", pytrace=False
            )
    return notebooks_dir / "nbval.args"
