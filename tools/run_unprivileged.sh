#!/usr/bin/env bash
# Re-runs the kernel tests (pytest -m kernel) and the notebooks (strict nbval) as an
# unprivileged user, which is what a Binder learner is: no root, no CAP_NET_RAW.
#
# As root (CI, `make test-unprivileged`): copies the repository (without .venv and .git) to a
# temp dir owned by uid 65534, builds a venv there from requirements.txt with
# `python3 -m venv` (as root, so pip's cache is used; the user can read it but not change
# it, like a system install), installs handshake_lab editable from the copy, and then runs
# everything as uid 65534 with HOME in the temp dir. As any other user: runs the same two
# test commands directly with the project's .venv.
#
# Exit status: non-zero if either run fails, or if either selection is empty (pytest's exit
# 5: no kernel tests or no notebooks means this check proved nothing, so it must not pass).
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

UNPRIVILEGED_UID=65534
NBVAL_FLAGS=(--nbval --nbval-current-env --nbval-cell-timeout=60
    --nbval-sanitize-with notebooks/sanitize.cfg -p no:cacheprovider)
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
as_user() {
    setpriv --reuid="$UNPRIVILEGED_UID" --regid="$UNPRIVILEGED_UID" --clear-groups \
        env -i HOME="$WORK/home" PATH="$WORK/venv/bin:/usr/local/bin:/usr/bin:/bin" \
        LANG=C.UTF-8 TMPDIR="$WORK/tmp" CI="${CI:-}" "$@"
}

WORK=$(mktemp -d -t handshake-lab-unprivileged.XXXXXX)
cleanup() {
    rm -rf "$WORK"
}
trap cleanup EXIT
chmod 755 "$WORK"
mkdir "$WORK/home" "$WORK/tmp" "$WORK/repo"

if ! as_user "$PY3" -c pass 2>/dev/null; then
    # Only where the interpreter lives in root's home (pyenv), and only traversal (o+x).
    root_home=$(getent passwd 0 | cut -d: -f6)
    case "$PY3" in
        "$root_home"/*)
            echo "uid $UNPRIVILEGED_UID cannot reach $PY3: making $root_home traversable (chmod o+x $root_home)"
            chmod o+x "$root_home"
            ;;
    esac
    as_user "$PY3" -c pass || {
        echo "uid $UNPRIVILEGED_UID cannot run $PY3; install Python where every user can" >&2
        exit 1
    }
fi

echo "--- copying the repository to $WORK/repo (without .venv, .git)"
tar --exclude=./.venv --exclude=./.git --exclude=./test-artifacts -cf - . |
    tar -xf - -C "$WORK/repo"

echo "--- building a venv with $PY3 and requirements.txt"
started=$SECONDS
"$PY3" -m venv "$WORK/venv"
"$WORK/venv/bin/python" -m pip install --quiet -r "$WORK/repo/requirements.txt"
"$WORK/venv/bin/python" -m pip install --quiet --no-deps --editable "$WORK/repo"
echo "venv ready in $((SECONDS - started)) s"
chown -R "$UNPRIVILEGED_UID:$UNPRIVILEGED_UID" "$WORK/home" "$WORK/tmp" "$WORK/repo"

cd "$WORK/repo"
as_user bash -c "$(declare -p KERNEL_FLAGS NBVAL_FLAGS); $(declare -f run_tests); run_tests python"
