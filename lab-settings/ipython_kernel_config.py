# The course's Python kernel reports its language_info without the Python version.
#
# Installed into <sys.prefix>/etc/ipython/ by tools/install_lab_settings.sh (`make lab`,
# `make test`, binder/postBuild). When a kernel starts, JupyterLab writes the kernel's
# language_info into the open notebook and marks it modified unless nothing changed. The
# notebooks store exactly this language_info (tools/notebooks.py, LANGUAGE_INFO), so they open
# unmodified whichever Python 3 runs the kernel: 3.11 on one machine, 3.12 on Binder.
# exec_lines run before the kernel answers its first request; the line defines no name.
c = get_config()  # noqa: F821
c.IPKernelApp.exec_lines = [
    "get_ipython().kernel.language_info = {key: value for key, value in"
    " get_ipython().kernel.language_info.items() if key != 'version'}"
]
