# The course's Python kernel reports its language_info without the Python version, and keeps
# its address space small.
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


# The kernel's address space, for hosts that cap it (RLIMIT_AS: the first thread or mmap that
# does not fit fails; benchmarks/notebook_address_space.py measures each notebook's peak).
# - glibc's malloc gives a thread that finds no free arena one of its own, up to 8 per core on
#   64-bit, and reserves 64 MiB of address space for each: a kernel's own threads make several
#   before its first cell, and notebook 07's threads more. Python threads take turns holding
#   the GIL, so they gain little from arenas of their own: two arenas, set here while the
#   kernel still has one thread (glibc reads the limit until more than 8 arenas exist, then
#   keeps the one it has). A MALLOC_ARENA_MAX or GLIBC_TUNABLES of the host is left to glibc.
# - numpy (which matplotlib imports) starts OpenBLAS threads when it is imported, as many as
#   the cores but one, each reserving a stack and a buffer; the course does no linear algebra:
#   none, unless the host set OPENBLAS_NUM_THREADS.
def _bounded_address_space():
    import ctypes
    import os
    import platform

    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    if platform.libc_ver()[0] != "glibc" or "MALLOC_ARENA_MAX" in os.environ:
        return
    if "arena_max" in os.environ.get("GLIBC_TUNABLES", ""):
        return
    ctypes.CDLL(None).mallopt(-8, 2)  # M_ARENA_MAX in glibc's malloc.h


_bounded_address_space()
