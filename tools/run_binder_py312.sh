#!/usr/bin/env bash
# Runs the notebooks the way a Binder learner gets them: Python 3.12 (binder/runtime.txt),
# exactly binder/requirements.txt, handshake_lab installed by binder/postBuild, and an
# unprivileged user (uid 65534) who owns the environment and the repository copy.
#
# Steps: copy the repository (without .venv, .git) to a temp dir; as root, make a fresh
# Python 3.12 venv there and install binder/requirements.txt (root's pip cache makes this
# fast); hand the venv, the copy and a HOME to uid 65534; as that user run binder/postBuild
# (as Binder does) and then strict nbval over notebooks/. The temp dir is removed on exit.
# Exit status: non-zero if any step fails or no notebook is collected (pytest's exit 5).
# Run it as root (CI does); as another user it runs everything as that user instead.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
source tools/lib.sh

PY312=$(find_python312) || {
    echo "Python 3.12 not found (tried python3.12 on PATH, pyenv which, pyenv's versions/):" \
        "install it, e.g. pyenv install 3.12" >&2
    exit 1
}
echo "Python 3.12: $PY312"

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

echo "--- strict nbval over notebooks/ (uid $(as_user id -u), Python 3.12)"
started=$SECONDS
as_user python -m pytest "${NBVAL_FLAGS[@]}" notebooks && rc=0 || rc=$?
echo "nbval took $((SECONDS - started)) s"
if [ "$rc" -eq 5 ]; then
    echo "FAILED: no notebook was collected under notebooks/" >&2
fi
exit "$rc"
