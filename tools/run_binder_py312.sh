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

UNPRIVILEGED_UID=65534
NBVAL_FLAGS=(--nbval --nbval-current-env --nbval-cell-timeout=60
    --nbval-sanitize-with notebooks/sanitize.cfg -p no:cacheprovider)

# The real Python 3.12 binary (not a pyenv shim, which another user may not be able to run).
find_python312() {
    local candidate
    for candidate in \
        "$(command -v python3.12 2>/dev/null || true)" \
        "$(pyenv which python3.12 2>/dev/null || true)" \
        "$(pyenv root 2>/dev/null || echo "${PYENV_ROOT:-$HOME/.pyenv}")"/versions/3.12*/bin/python3.12
    do
        [ -n "$candidate" ] && [ -x "$candidate" ] || continue
        "$candidate" -c 'import os, sys; assert sys.version_info[:2] == (3, 12)
print(os.path.realpath(sys.executable))' 2>/dev/null && return 0
    done
    return 1
}
PY312=$(find_python312) || {
    echo "Python 3.12 not found (tried python3.12 on PATH, pyenv which, pyenv's versions/):" \
        "install it, e.g. pyenv install 3.12" >&2
    exit 1
}
echo "Python 3.12: $PY312"

WORK=$(mktemp -d -t handshake-lab-binder312.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
chmod 755 "$WORK"
mkdir "$WORK/home" "$WORK/tmp" "$WORK/repo"

if [ "$(id -u)" -eq 0 ]; then
    as_user() {
        setpriv --reuid="$UNPRIVILEGED_UID" --regid="$UNPRIVILEGED_UID" --clear-groups \
            env -i HOME="$WORK/home" PATH="$WORK/venv/bin:/usr/local/bin:/usr/bin:/bin" \
            LANG=C.UTF-8 TMPDIR="$WORK/tmp" CI="${CI:-}" "$@"
    }
    if ! as_user "$PY312" -c pass 2>/dev/null; then
        # Only where the interpreter lives in root's home (pyenv), and only traversal (o+x).
        root_home=$(getent passwd 0 | cut -d: -f6)
        case "$PY312" in
            "$root_home"/*)
                echo "uid $UNPRIVILEGED_UID cannot reach $PY312: making $root_home traversable (chmod o+x $root_home)"
                chmod o+x "$root_home"
                ;;
        esac
        as_user "$PY312" -c pass || {
            echo "uid $UNPRIVILEGED_UID cannot run $PY312; install Python 3.12 where every user can" >&2
            exit 1
        }
    fi
else
    as_user() {
        env -i HOME="$WORK/home" PATH="$WORK/venv/bin:/usr/local/bin:/usr/bin:/bin" \
            LANG=C.UTF-8 TMPDIR="$WORK/tmp" CI="${CI:-}" "$@"
    }
fi

echo "--- copying the repository to $WORK/repo (without .venv, .git)"
tar --exclude=./.venv --exclude=./.git --exclude=./test-artifacts -cf - . |
    tar -xf - -C "$WORK/repo"

echo "--- Python 3.12 venv with binder/requirements.txt"
started=$SECONDS
"$PY312" -m venv "$WORK/venv"
"$WORK/venv/bin/python" -m pip install --quiet -r "$WORK/repo/binder/requirements.txt"
echo "installed in $((SECONDS - started)) s"
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
