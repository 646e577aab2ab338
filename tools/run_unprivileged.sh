#!/usr/bin/env bash
# Re-runs the kernel tests (pytest -m kernel) and the notebooks (strict nbval) as an
# unprivileged user, which is what a Binder learner is: no root, no CAP_NET_RAW.
#
# As root (CI, `make test-unprivileged`): copies the repository (without .venv and .git) to a
# temp dir owned by uid 65534, builds a venv there from requirements-dev.txt (the course and
# its test tools) with `python3 -m venv` (as root, so pip's cache is used; the user can read
# it but not change it, like a system install), installs handshake_lab editable from the copy, and then runs
# everything as uid 65534 with HOME in the temp dir. As any other user: runs the same two
# test commands directly with the project's .venv.
#
# Exit status: non-zero if either run fails, or if either selection is empty (pytest's exit
# 5: no kernel tests or no notebooks means this check proved nothing, so it must not pass).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
source tools/lib.sh

KERNEL_FLAGS=(-m kernel -p no:cacheprovider)

# Runs the two test commands with the python given as $1, in the current directory.
run_tests() {
    local python=$1 status=0 rc
    echo "--- pytest -m kernel tests (uid $(id -u))"
    "$python" -m pytest "${KERNEL_FLAGS[@]}" tests && rc=0 || rc=$?
    if [ "$rc" -eq 5 ]; then
        echo "FAILED: no test is marked kernel; the unprivileged run would prove nothing" >&2
    fi
    [ "$rc" -eq 0 ] || status=1
    echo "--- pytest --nbval notebooks (uid $(id -u))"
    "$python" -m pytest "${NBVAL_FLAGS[@]}" notebooks && rc=0 || rc=$?
    if [ "$rc" -eq 5 ]; then
        echo "FAILED: no notebook was collected under notebooks/" >&2
    fi
    [ "$rc" -eq 0 ] || status=1
    return "$status"
}

if [ "$(id -u)" -ne 0 ]; then
    echo "Not root (uid $(id -u)): running the tests directly, with .venv."
    run_tests "${PYTHON:-.venv/bin/python}"
    exit
fi

# The interpreter behind python3 (a pyenv shim resolves to the real binary here), which the
# unprivileged user must be able to run: the venv links to it.
PY3=$(python3 -c 'import os, sys; print(os.path.realpath(sys.executable))')

make_work_dir unprivileged
let_user_run "$PY3"
copy_repository
build_venv "$PY3" requirements-dev.txt
"$WORK/venv/bin/python" -m pip install --quiet --no-deps --editable "$WORK/repo"
chown -R "$UNPRIVILEGED_UID:$UNPRIVILEGED_UID" "$WORK/home" "$WORK/tmp" "$WORK/repo"

cd "$WORK/repo"
as_user bash -c "$(declare -p KERNEL_FLAGS NBVAL_FLAGS); $(declare -f run_tests); run_tests python"
