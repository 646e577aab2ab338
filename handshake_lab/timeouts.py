"""Every timeout the lab uses, in one place, in seconds, and the one deadline-poll loop.

Rule: no blocking call in handshake_lab is made without one of these (or a caller's
own value). They are generous for loopback, where a round trip takes microseconds, so
that a slow CI machine never flakes, yet short enough that a notebook cell never hangs.
`poll_until` is how the lab waits for something only the kernel can tell (a state that
has no event to wait on): it asks again every `interval`, never past its deadline.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

_Value = TypeVar("_Value")

#: connect(), accept(), send() and recv() between two sockets on this machine.
LOOPBACK_TIMEOUT = 5.0

#: How long a helper waits for its own background thread to finish on exit.
THREAD_JOIN_TIMEOUT = 5.0

#: How long to wait for something that should already have happened (a state to appear).
SHORT_TIMEOUT = 2.0

#: The recorder's sampling period: about every millisecond, only while recording.
SAMPLE_INTERVAL = 0.001

#: A child process that runs a capture experiment (namespace tier) must finish in this.
CAPTURE_TIMEOUT = 20.0

#: Upper bound on waiting for a real kernel timer (a SYN retransmission, first retry ~1 s).
KERNEL_TIMER_TIMEOUT = 8.0

#: How often poll_until asks again by default: finer than the shortest kernel timer the lab
#: waits for (the delayed ACK of a FIN, a clock tick or more; a segment itself crosses loopback
#: within its send call).
POLL_INTERVAL = 0.001


def poll_until(
    check: Callable[[], _Value], *, timeout: float, interval: float = POLL_INTERVAL
) -> _Value:
    """Call ``check()`` until it returns something truthy or `timeout` seconds have passed.

    Returns its last value (falsy when time ran out), so the caller's assert can show what
    was seen last instead of hanging.
    """
    deadline = time.monotonic() + timeout
    value = check()
    while not value and time.monotonic() < deadline:
        time.sleep(interval)
        value = check()
    return value
