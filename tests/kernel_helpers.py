"""Small helpers for the kernel tests: deadline polling (never a sleep for ordering), and a
private network namespace for a child process that changes its own sysctls."""

from __future__ import annotations

import ctypes
import os
import socket
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
