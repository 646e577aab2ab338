#!/usr/bin/env bash
# Runs the course the way a Binder learner gets it, as close as this machine allows without
# Docker: Python 3.12 (binder/runtime.txt), exactly binder/requirements.txt, binder/postBuild
# (handshake_lab and the course's settings), and an unprivileged user (uid 65534) with its own
# HOME, who owns the environment and the repository copy. Two checks run there:
#   1. strict nbval over notebooks/;
#   2. the real-browser tests (tests/browser, pytest -m browser): JupyterLab from that
#      environment, driven in Debian's Chromium.
# The test harness is not part of what Binder installs: after postBuild, the test tools
# (requirements-dev.txt: pytest, nbval, playwright, ruff) are added with binder/requirements.txt
# as constraints, and the script fails if that changed the version of anything Binder had.
#
# Steps: copy the repository (without .venv, .git, test-artifacts) to a temp dir; as root, make
# a fresh Python 3.12 venv there and install binder/requirements.txt (root's pip cache makes
# this fast); hand the venv, the copy and a HOME to uid 65534; as that user run binder/postBuild
# (as Binder does); as root add the test harness; as the user run both checks. The browser
# test's screenshots are copied to test-artifacts/screenshots/binder-py312/ (git-ignored, kept
# by CI); the temp dir is removed on exit.
# Exit status: non-zero if any step fails, Chromium is missing, or a check collects no test
# (pytest's exit 5). Run it as root (CI does); as another user it runs everything as that user.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
source tools/lib.sh
REPOSITORY=$PWD
SCREENSHOTS=$REPOSITORY/test-artifacts/screenshots/binder-py312

PY312=$(find_python312) || {
    echo "Python 3.12 not found (tried python3.12 on PATH, pyenv which, pyenv's versions/):" \
        "install it, e.g. pyenv install 3.12" >&2
    exit 1
}
echo "Python 3.12: $PY312"
if ! [ -x /usr/bin/chromium ] && ! command -v chromium >/dev/null; then
    echo "Chromium is not installed (apt-get install -y chromium): the browser check cannot run" >&2
    exit 1
fi

make_work_dir binder312
let_user_run "$PY312"
copy_repository
build_venv "$PY312" binder/requirements.txt
if [ "$(id -u)" -eq 0 ]; then
    chown -R "$UNPRIVILEGED_UID:$UNPRIVILEGED_UID" "$WORK/venv" "$WORK/home" "$WORK/tmp" "$WORK/repo"
fi

cd "$WORK/repo"
echo "--- binder/postBuild (uid $(as_user id -u))"
as_user bash binder/postBuild
"$WORK/venv/bin/python" -m pip check
"$WORK/venv/bin/python" -m pip freeze --all >"$WORK/binder-freeze.txt"

echo "--- the test harness (not Binder's): requirements-dev.txt, constrained by binder/requirements.txt"
"$WORK/venv/bin/python" -m pip install --quiet -c binder/requirements.txt -r requirements-dev.txt
"$WORK/venv/bin/python" -m pip check
"$WORK/venv/bin/python" -m pip freeze --all >"$WORK/harness-freeze.txt"
changed=$(grep -vxF -f "$WORK/harness-freeze.txt" "$WORK/binder-freeze.txt" || true)
if [ -n "$changed" ]; then
    echo "FAILED: installing the test harness changed what Binder installs:" $changed >&2
    exit 1
fi
echo "Binder's packages unchanged; harness added:" \
    $(grep -vxF -f "$WORK/binder-freeze.txt" "$WORK/harness-freeze.txt" | cut -d= -f1)

status=0
echo "--- 1. strict nbval over notebooks/ (uid $(as_user id -u), Python 3.12)"
started=$SECONDS
as_user python -m pytest -p no:cacheprovider "${NBVAL_FLAGS[@]}" notebooks && rc=0 || rc=$?
echo "nbval took $((SECONDS - started)) s (exit $rc)"
if [ "$rc" -eq 5 ]; then
    echo "FAILED: no notebook was collected under notebooks/" >&2
fi
[ "$rc" -eq 0 ] || status=1

echo "--- 2. the browser tests, pytest -m browser tests/browser (uid $(as_user id -u), Python 3.12)"
started=$SECONDS
as_user python -m pytest -p no:cacheprovider -m browser -rs tests/browser && rc=0 || rc=$?
echo "browser tests took $((SECONDS - started)) s (exit $rc)"
if [ "$rc" -eq 5 ]; then
    echo "FAILED: no browser test was collected under tests/browser" >&2
fi
[ "$rc" -eq 0 ] || status=1
if [ -d test-artifacts/screenshots ]; then
    mkdir -p "$SCREENSHOTS"
    cp -r test-artifacts/screenshots/. "$SCREENSHOTS/"
    echo "screenshots of this run: $SCREENSHOTS"
fi
exit "$status"
