# Shared by the tools/*.sh scripts; `source` it after cd-ing to the repository root.
# Defines the unprivileged user and the nbval flags (notebooks/nbval.args), and functions to
# find Python 3.12, to make a work directory ($WORK) with a venv in it, to run a command there
# as that user, and to copy the repository there.

UNPRIVILEGED_UID=65534
NBVAL_FLAGS=(@notebooks/nbval.args)  # strict nbval's flags, in one file for every runner

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

# Makes $WORK, a temp dir (removed on exit) that the unprivileged user can enter, with home/,
# tmp/ and repo/ in it. $1 names it.
make_work_dir() {
    WORK=$(mktemp -d -t "handshake-lab-$1.XXXXXX")
    trap 'rm -rf "$WORK"' EXIT
    chmod 755 "$WORK"
    mkdir "$WORK/home" "$WORK/tmp" "$WORK/repo"
}

# Builds $WORK/venv with the interpreter $1 and installs the requirements file $2 (a path in
# the repository copy) into it: as root, so pip's cache is used; the user may read, not change.
build_venv() {
    local python=$1 requirements=$2 started=$SECONDS
    echo "--- building a venv with $python and $requirements"
    "$python" -m venv "$WORK/venv"
    "$WORK/venv/bin/python" -m pip install --quiet -r "$WORK/repo/$requirements"
    echo "venv ready in $((SECONDS - started)) s"
}

# Copies the repository (without .venv, .git and test artifacts) into $WORK/repo.
copy_repository() {
    echo "--- copying the repository to $WORK/repo (without .venv, .git)"
    tar --exclude=./.venv --exclude=./.git --exclude=./test-artifacts -cf - . |
        tar -xf - -C "$WORK/repo"
}
