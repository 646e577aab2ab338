"""Shared fixtures: every test must leave no thread, socket or file descriptor behind."""

from __future__ import annotations

import os
import sys
import threading
import time

import pytest

_SETTLE_SECONDS = 2.0


def _open_fds() -> dict[int, str]:
    fds = {}
    for name in os.listdir("/proc/self/fd"):
        try:
            fds[int(name)] = os.readlink(f"/proc/self/fd/{name}")
        except OSError:
            continue  # the directory's own descriptor, gone already
    return fds


# Libraries keep some of their own data files open in caches (matplotlib's fonts, for one):
# those are not ours to close. Sockets, pipes and every other file still count.
_LIBRARY_DATA = tuple({sys.prefix, sys.base_prefix})


def _leaks(threads_before: set, fds_before: dict) -> list[str]:
    threads = [t.name for t in threading.enumerate() if t not in threads_before and t.is_alive()]
    fds = {
        fd: target
        for fd, target in _open_fds().items()
        if fds_before.get(fd) != target and not target.startswith(_LIBRARY_DATA)
    }
    return [f"thread {name!r}" for name in threads] + [
        f"fd {fd} -> {target}" for fd, target in sorted(fds.items())
    ]


@pytest.fixture(autouse=True)
def no_leaks(request):
    """Fail a test that leaves a thread, a socket or any other fd open after it ends."""
    if not os.path.isdir("/proc/self/fd"):
        yield
        return
    threads_before = set(threading.enumerate())
    fds_before = _open_fds()
    yield
    # Threads being joined and sockets being closed finish within moments: poll, not sleep.
    deadline = time.monotonic() + _SETTLE_SECONDS
    leaks = _leaks(threads_before, fds_before)
    while leaks and time.monotonic() < deadline:
        time.sleep(0.01)
        leaks = _leaks(threads_before, fds_before)
    if leaks:
        pytest.fail(f"{request.node.nodeid} left behind: {', '.join(leaks)}", pytrace=False)
