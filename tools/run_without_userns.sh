#!/usr/bin/env bash
# Re-runs the kernel tests that choose an evidence tier (saved SYN, segment counts, capture
# tiers, wire agreement) and notebook 05 (strict nbval) as uid 65534 on a machine where
# unprivileged user namespaces are unavailable, as in many containers and on Ubuntu 24.04:
# there the namespace tier must say why it is unavailable and the saved-SYN tier be chosen.
#
# A container's sysctl may not be writable, so the limit is set one level down: as root
# (CI, `make test-without-userns`) this script creates a child user namespace mapping uids and
# gids 0-65535 to themselves (root writes the maps itself: no newuidmap needed), and inside it,
# as that namespace's root, writes 0 to its own /proc/sys/user/max_user_namespaces. The kernel
# checks that limit in every ancestor namespace of a new one, so from then on creating a user
# namespace fails with ENOSPC, as on a host whose limit is 0. It checks that it does, drops to
# uid 65534 with setpriv (no capabilities left) and runs the tests there. The venv is the
# project's (.venv, made by make; uid 65534 may read it, not change it); the code is a copy of
# the repository in a temp dir owned by uid 65534, first on PYTHONPATH (checked).
#
# As any other user: runs the same tests directly if this machine already refuses user
# namespaces; otherwise stops, saying it needs root.
#
# Exit status: non-zero if the limit could not be set or did not hold, if the saved-SYN tier
# was not chosen, or if the tests or the notebook fail; pytest's exit 5 (nothing collected)
# is a failure too: an empty selection would prove nothing.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
source tools/lib.sh

KERNEL_TESTS=(tests/test_saved_syn.py tests/test_segment_counts.py tests/test_capture.py
    tests/test_wire_agreement.py)
NOTEBOOK=notebooks/05-packets-and-sequence-numbers.ipynb

# What uid 65534 must see: creating a user namespace fails, and the tiers say so.
check_no_user_namespaces() {
    echo "--- uid $(id -u): creating a user namespace must fail"
    python - <<'EOF'
import ctypes, errno, os, sys
from handshake_lab.capture.evidence import Tier
from handshake_lab.capture.tiers import best_tier

libc = ctypes.CDLL(None, use_errno=True)
if libc.unshare(0x10000000) == 0:  # CLONE_NEWUSER
    sys.exit("FAILED: unshare(CLONE_NEWUSER) worked: user namespaces are still available")
code = ctypes.get_errno()
print(f"unshare(CLONE_NEWUSER): {errno.errorcode[code]} ({os.strerror(code)})")
choice = best_tier()
print(f"best tier: {choice.tier.value}: {choice.explanation}")
if choice.tier is not Tier.SAVED_SYN:
    sys.exit(f"FAILED: expected the saved-SYN tier, got {choice.tier.value}")
if os.strerror(code) not in choice.explanation:
    sys.exit("FAILED: the explanation does not give the namespace's error")
EOF
}

# Runs the checks and the tests with the python on PATH, in the current directory.
run_tests() {
    local status=0 rc
    check_no_user_namespaces || status=1
    python -c 'import handshake_lab, os; print("handshake_lab from", os.path.dirname(handshake_lab.__file__))'
    echo "--- pytest ${KERNEL_TESTS[*]} (uid $(id -u))"
    python -m pytest -p no:cacheprovider -rs "${KERNEL_TESTS[@]}" && rc=0 || rc=$?
    [ "$rc" -eq 5 ] && echo "FAILED: no test was collected" >&2
    [ "$rc" -eq 0 ] || status=1
    echo "--- pytest --nbval $NOTEBOOK (uid $(id -u))"
    python -m pytest "${NBVAL_FLAGS[@]}" "$NOTEBOOK" && rc=0 || rc=$?
    [ "$rc" -eq 5 ] && echo "FAILED: the notebook was not collected" >&2
    [ "$rc" -eq 0 ] || status=1
    return "$status"
}

# Inside the child user namespace, as its root: set the limit, prove it holds, drop to 65534.
if [ "${1:-}" = "--in-namespace" ]; then
    WORK=$2
    echo "--- in a child user namespace (uid_map: $(tr -s ' ' <"/proc/self/uid_map"))"
    echo 0 >/proc/sys/user/max_user_namespaces
    echo "user.max_user_namespaces here: $(cat /proc/sys/user/max_user_namespaces)"
    cd "$WORK/repo"
    as_user PYTHONPATH="$WORK/repo" PYTHONDONTWRITEBYTECODE=1 bash -c \
        "$(declare -p KERNEL_TESTS NBVAL_FLAGS NOTEBOOK); $(declare -f check_no_user_namespaces run_tests); run_tests"
    exit
fi

if [ "$(id -u)" -ne 0 ]; then
    if unshare --user true 2>/dev/null; then
        echo "This machine allows user namespaces and this is not root (uid $(id -u)): run" \
            "this as root, which can take them away from a child namespace." >&2
        exit 1
    fi
    echo "Not root (uid $(id -u)) and user namespaces are unavailable here: running directly."
    PATH="$(cd "$(dirname "${PYTHON:-.venv/bin/python}")" && pwd):$PATH" run_tests
    exit
fi

VENV=$(cd "$(dirname "${PYTHON:-.venv/bin/python}")/.." && pwd)
[ -x "$VENV/bin/python" ] || {
    echo "no venv at $VENV: run make first (it builds .venv)" >&2
    exit 1
}
make_work_dir without-userns
let_user_run "$(realpath "$VENV/bin/python")"
ln -s "$VENV" "$WORK/venv"  # as_user puts $WORK/venv/bin first on PATH
copy_repository
chown -R "$UNPRIVILEGED_UID:$UNPRIVILEGED_UID" "$WORK/home" "$WORK/tmp" "$WORK/repo"
as_user "$WORK/venv/bin/python" -c pass || {
    echo "uid $UNPRIVILEGED_UID cannot run $VENV/bin/python: make the venv readable" >&2
    exit 1
}

# The child unshares, says so through one fifo and waits on another until its maps are written.
mkfifo "$WORK/unshared" "$WORK/mapped"
unshare --user -- bash -c 'echo >"$1/unshared"; read -r _ <"$1/mapped"; shift; exec "$@"' \
    _ "$WORK" bash tools/run_without_userns.sh --in-namespace "$WORK" &
child=$!
read -r _ <"$WORK/unshared"
echo "0 0 65536" >"/proc/$child/uid_map"
echo "0 0 65536" >"/proc/$child/gid_map"
echo >"$WORK/mapped"
wait "$child"
