#!/usr/bin/env bash
# Installs the course's settings (lab-settings/) into the Python environment that runs
# JupyterLab and the kernel, given as its python (default: python on PATH):
#   overrides.json           -> <sys.prefix>/share/jupyter/lab/settings/ (JupyterLab's
#                               defaults for this environment: no "Jupyter news?" pop-up)
#   ipython_kernel_config.py -> <sys.prefix>/etc/ipython/ (the kernel's language_info without
#                               the Python version, so notebooks do not open as modified; a
#                               small address space: two malloc arenas, no OpenBLAS threads)
# Called by the Makefile (`make lab`, `make test`) and binder/postBuild; a learner's own
# settings (~/.jupyter, ~/.ipython) still win over these.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
python=${1:-python}
prefix=$("$python" -c 'import sys; print(sys.prefix)')
mkdir -p "$prefix/share/jupyter/lab/settings" "$prefix/etc/ipython"
cp lab-settings/overrides.json "$prefix/share/jupyter/lab/settings/overrides.json"
cp lab-settings/ipython_kernel_config.py "$prefix/etc/ipython/ipython_kernel_config.py"
echo "course settings installed in $prefix (lab-settings/)"
