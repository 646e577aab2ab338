#!/usr/bin/env bash
# Checks the Binder configuration without Docker (`make binder-check`):
#   1. binder/ holds runtime.txt (python-3.12), requirements.txt with exact pins only (and no
#      jupyterlab_widgets pin apart from ipywidgets), and a postBuild that is strict bash and
#      installs handshake_lab with `pip install --no-deps .`;
#   2. binder/requirements.txt resolves on Python 3.12 (pip install --dry-run, fresh venv);
#   3. repo2docker, in no-build mode, reads that config: Python 3.12, the requirements file,
#      postBuild (it prints the Dockerfile it would build, checked here);
#   4. README.md's Binder badge opens full JupyterLab at notebooks/00-start-here.ipynb.
# It also warns (does not fail) where a pin differs from what the development .venv has
# installed: CI's .venv picks up new bug-fix releases, the Binder pins move only by hand.
# repo2docker lives in a throwaway venv; nothing is added to the project's requirements.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
source tools/lib.sh

# A release known to work here; bump deliberately.
REPO2DOCKER=jupyter-repo2docker==2026.4.0
BADGE_RE='https://mybinder\.org/v2/gh/[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+/HEAD\?urlpath=lab/tree/notebooks/00-start-here\.ipynb'

failures=0
fail() { echo "FAIL: $*" >&2; failures=$((failures + 1)); }
ok() { echo "ok: $*"; }

WORK=$(mktemp -d -t handshake-lab-binder-check.XXXXXX)
trap 'rm -rf "$WORK"' EXIT

echo "=== 1. the files in binder/"
[ "$(cat binder/runtime.txt 2>/dev/null)" = "python-3.12" ] &&
    ok "runtime.txt says python-3.12" || fail "binder/runtime.txt must hold exactly: python-3.12"
if [ -f binder/requirements.txt ]; then
    loose=$(grep -Ev '^\s*(#|$)' binder/requirements.txt |
        grep -Ev '^[A-Za-z0-9_.-]+(\[[A-Za-z0-9_,.-]+\])?==[A-Za-z0-9_.+!-]+\s*(#.*)?$' || true)
    [ -z "$loose" ] && ok "requirements.txt pins exact versions" ||
        fail "binder/requirements.txt lines without an exact == pin: $loose"
    grep -Eiq '^\s*jupyterlab[_-]widgets\b' binder/requirements.txt &&
        fail "do not pin jupyterlab_widgets in binder/requirements.txt: ipywidgets pins its match" ||
        ok "jupyterlab_widgets follows ipywidgets"
else
    fail "binder/requirements.txt is missing"
fi
if [ -f binder/postBuild ]; then
    head -1 binder/postBuild | grep -q bash || fail "binder/postBuild must start with a bash #! line"
    grep -q '^set -euo pipefail' binder/postBuild || fail "binder/postBuild must set -euo pipefail"
    grep -Eq 'pip install .*--no-deps.* \.( |$)' binder/postBuild ||
        fail "binder/postBuild must install handshake_lab with pip install --no-deps ."
    grep -Eq '\b(sudo|apt-get|apt)\b' binder/postBuild &&
        fail "binder/postBuild runs as the unprivileged user: no sudo/apt there"
    bash -n binder/postBuild && ok "postBuild is valid bash" || fail "binder/postBuild: syntax error"
else
    fail "binder/postBuild is missing"
fi

echo "=== 2. binder/requirements.txt resolves on Python 3.12"
if PY312=$(find_python312); then
    "$PY312" -m venv "$WORK/py312"
    if "$WORK/py312/bin/python" -m pip install --quiet --dry-run \
        --report "$WORK/resolution.json" -r binder/requirements.txt; then
        "$WORK/py312/bin/python" - "$WORK/resolution.json" <<'EOF'
import json, sys
install = json.load(open(sys.argv[1]))["install"]
versions = {item["metadata"]["name"].lower().replace("_", "-"): item["metadata"]["version"]
            for item in install}
print(f"ok: resolves on Python 3.12: {len(install)} packages, jupyterlab {versions['jupyterlab']},"
      f" ipywidgets {versions['ipywidgets']} with jupyterlab-widgets"
      f" {versions.get('jupyterlab-widgets', '?')}")
EOF
    else
        fail "binder/requirements.txt does not resolve on Python 3.12 (pip's message above)"
    fi
else
    fail "Python 3.12 not found (python3.12 on PATH, pyenv which, pyenv's versions/): pyenv install 3.12"
fi

if [ -x .venv/bin/python ]; then
    .venv/bin/python - <<'EOF'
import re
from importlib import metadata
for line in open("binder/requirements.txt"):
    match = re.match(r"\s*([A-Za-z0-9_.-]+)==(\S+)", line)
    if not match:
        continue
    name, pinned = match.groups()
    try:
        installed = metadata.version(name)
    except metadata.PackageNotFoundError:
        continue  # e.g. notebook: Binder-only
    if installed != pinned:
        print(f"warning: binder pins {name}=={pinned}, .venv has {installed}:"
              " update binder/requirements.txt once the tests pass with it")
EOF
fi

echo "=== 3. repo2docker --no-build reads the config"
r2d_python=${PY312:-python3}
"$r2d_python" -m venv "$WORK/r2d"
if "$WORK/r2d/bin/python" -m pip install --quiet "$REPO2DOCKER" &&
    "$WORK/r2d/bin/repo2docker" --no-build --debug --no-run . >"$WORK/r2d.log" 2>&1; then
    grep -q 'python=3.12' "$WORK/r2d.log" && ok "repo2docker picks Python 3.12" ||
        fail "repo2docker did not pick Python 3.12 from binder/runtime.txt"
    grep -q 'pip install --no-cache-dir -r "binder/requirements.txt"' "$WORK/r2d.log" &&
        ok "repo2docker installs binder/requirements.txt" ||
        fail "repo2docker's Dockerfile does not install binder/requirements.txt"
    grep -q './binder/postBuild' "$WORK/r2d.log" && ok "repo2docker runs binder/postBuild" ||
        fail "repo2docker's Dockerfile does not run binder/postBuild"
else
    cat "$WORK/r2d.log" >&2 2>/dev/null || true
    fail "repo2docker --no-build failed"
fi

echo "=== 4. the README's Binder badge"
if [ -f README.md ] && grep -Eq "$BADGE_RE" README.md; then
    ok "README links $(grep -Eo "$BADGE_RE" README.md | head -1)"
    [ -f notebooks/00-start-here.ipynb ] ||
        fail "the badge opens notebooks/00-start-here.ipynb, which does not exist"
else
    fail "README.md needs a Binder link of the form" \
        "https://mybinder.org/v2/gh/OWNER/REPO/HEAD?urlpath=lab/tree/notebooks/00-start-here.ipynb"
fi

if [ "$failures" -ne 0 ]; then
    echo "binder-check: $failures problem(s)" >&2
    exit 1
fi
echo "binder-check: all good"
