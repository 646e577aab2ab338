"""Small waiting helpers for the kernel tests: deadline polling, never a sleep for ordering."""

from __future__ import annotations

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
