# Shared by the tools/*.sh scripts; `source` it after cd-ing to the repository root.
# Defines the unprivileged user and the nbval flags, and functions to find Python 3.12, to run a
# command as that user in a work directory ($WORK) and to copy the repository there.

UNPRIVILEGED_UID=65534
NBVAL_FLAGS=(--nbval --nbval-current-env --nbval-cell-timeout=60
    --nbval-sanitize-with notebooks/sanitize.cfg -p no:cacheprovider)

# Prints the real Python 3.12 binary (not a pyenv shim, which another user may not be able to
# run); returns 1 if there is none.
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

# Runs "$@" with a clean environment (HOME, TMPDIR and the venv in $WORK): as uid
# $UNPRIVILEGED_UID when this script runs as root, else as the current user.
as_user() {
    local drop_privileges=()
    if [ "$(id -u)" -eq 0 ]; then
        drop_privileges=(setpriv --reuid="$UNPRIVILEGED_UID" --regid="$UNPRIVILEGED_UID"
            --clear-groups)
    fi
    "${drop_privileges[@]}" env -i HOME="$WORK/home" PATH="$WORK/venv/bin:/usr/local/bin:/usr/bin:/bin" \
        LANG=C.UTF-8 TMPDIR="$WORK/tmp" CI="${CI:-}" "$@"
}

# Makes sure the unprivileged user can run the interpreter $1: where it lives in root's home
# (pyenv), makes that home traversable (o+x, nothing more); exits if it still cannot.
let_user_run() {
    local python=$1 root_home
    as_user "$python" -c pass 2>/dev/null && return 0
    root_home=$(getent passwd 0 | cut -d: -f6)
    case "$python" in
        "$root_home"/*)
            echo "uid $UNPRIVILEGED_UID cannot reach $python: making $root_home traversable (chmod o+x $root_home)"
            chmod o+x "$root_home"
            ;;
    esac
    as_user "$python" -c pass || {
        echo "uid $UNPRIVILEGED_UID cannot run $python; install Python where every user can" >&2
        exit 1
    }
}

# Copies the repository (without .venv, .git and test artifacts) into $WORK/repo.
copy_repository() {
    echo "--- copying the repository to $WORK/repo (without .venv, .git)"
    tar --exclude=./.venv --exclude=./.git --exclude=./test-artifacts -cf - . |
        tar -xf - -C "$WORK/repo"
}
