"""Small helpers for the kernel tests: deadline polling (never a sleep for ordering), a
private network namespace for a child process that changes its own sysctls, and a Recorder
lookup that misses once, as one can while the kernel hands a closing socket over."""

from __future__ import annotations

import ctypes
import os
import socket
import threading
import time

from handshake_lab.timeouts import SHORT_TIMEOUT


def wait_for(
    condition,
    *,
    timeout: float = SHORT_TIMEOUT,
    interval: float = 0.001,
    what: str = "the condition",
):
    """Poll `condition()` until it returns something truthy; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not happen within {timeout} s")
        time.sleep(interval)


CLONE_NEWNET = 0x40000000


def enter_network_namespace() -> None:
    """A private network namespace with loopback up: plain CLONE_NEWNET as root, else a
    user+net namespace (handshake_lab/capture/namespace_child.py). OSError where neither is
    allowed. For a child process: the caller never returns to the host's network."""
    from handshake_lab.capture.namespace_child import bring_interface_up, enter_private_network

    if os.geteuid() != 0:
        enter_private_network()
        return
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.unshare(CLONE_NEWNET) != 0:
        code = ctypes.get_errno()
        raise OSError(code, f"unshare(CLONE_NEWNET): {os.strerror(code)}")
    bring_interface_up("lo")


def ipv6_loopback() -> bool:
    """True where this host can bind a socket to ::1."""
    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
    except OSError:
        return False
    return True


def miss_one_lookup(recorder, answer) -> threading.Event:
    """Make the recorder's next lookup by addresses answer `answer` (None: no such connection,
    or a (state, inode) pair) for every connection it asks about, as one lookup can at the
    moment the kernel hands an orphaned socket over to its FIN-WAIT-2 entry
    (benchmarks/lookup_while_closing.py). The Event is set once that answer was given."""
    lookup = recorder._lookup
    real = lookup.states
    answered = threading.Event()

    def states(prepared: list) -> list:
        found = real(prepared)
        if answered.is_set() or not found:
            return found
        answered.set()
        return [answer] * len(found)

    lookup.states = states
    return answered
