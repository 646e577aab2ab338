"""Measure a real client's SYN retransmissions and when its connect() gives up.

A listener with listen(0) holds one finished connection; we make that one and never accept
it, so the kernel drops every later SYN (the accept queue is full) and a client with
TCP_SYNCNT=`syncnt` retransmits until connect() fails with ETIMEDOUT. Its TCP_INFO retransmit
count is polled every POLL_INTERVAL and the time of each increase is taken as the time of that
retransmission; the socket turning writable marks the failure. It waits for real kernel timers
(seconds: `syn_retry_schedule(syncnt).gives_up_after` says how many), bounded by `timeout`.

Rules: loopback only; every socket is closed on every path; Linux only (TCP_SYNCNT, TCP_INFO).
"""

from __future__ import annotations

import errno
import select
import socket
import time
from dataclasses import dataclass

from .. import platforms
from ..kernel.tcp_info import accept_queue, syn_retransmits
from ..timeouts import LOOPBACK_TIMEOUT, SHORT_TIMEOUT, poll_until

__all__ = ["MeasuredSynRetries", "measure_syn_retries"]

#: How often the retransmit count is read: fine next to the one-second retry timer.
POLL_INTERVAL = 0.005


@dataclass(frozen=True)
class MeasuredSynRetries:
    """When each SYN retransmission was seen and when connect() failed (seconds after it began)."""

    retransmissions: tuple[float, ...]
    gives_up_after: float | None  # None: connect() had not failed within the timeout
    errno: int  # the socket's error then (errno.ETIMEDOUT when it gave up)

    def __str__(self) -> str:
        times = ", ".join(f"{t:.2f} s" for t in self.retransmissions)
        if self.gives_up_after is None:
            return f"SYN resent at {times}; connect() had not failed yet"
        name = errno.errorcode.get(self.errno, str(self.errno))
        failed = f"connect() failed with {name} after {self.gives_up_after:.2f} s"
        return f"SYN resent at {times}; {failed}"


def measure_syn_retries(syncnt: int, timeout: float) -> MeasuredSynRetries:
    """TCP_SYNCNT=`syncnt` against a full accept queue: when each SYN went, when it failed."""
    if not platforms.is_linux() or not hasattr(socket, "TCP_SYNCNT"):
        raise OSError(errno.ENOPROTOOPT, f"TCP_SYNCNT is Linux's; {platforms.name()} has none")
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        address = listener.getsockname()
        with socket.create_connection(address, timeout=LOOPBACK_TIMEOUT):
            if not poll_until(lambda: accept_queue(listener).length == 1, timeout=SHORT_TIMEOUT):
                raise TimeoutError("the first connection never reached the accept queue")
            with socket.socket() as client:
                client.setsockopt(socket.IPPROTO_TCP, socket.TCP_SYNCNT, syncnt)
                client.setblocking(False)
                retransmitted: list[float] = []
                started = time.monotonic()
                if client.connect_ex(address) != errno.EINPROGRESS:
                    raise OSError("connect() did not wait for the handshake")

                def failed() -> float | None:
                    now = time.monotonic() - started
                    count = syn_retransmits(client)
                    retransmitted.extend([now] * (count - len(retransmitted)))
                    return now if select.select([], [client], [], 0)[1] else None

                gave_up = poll_until(failed, timeout=timeout, interval=POLL_INTERVAL)
                error = client.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
    return MeasuredSynRetries(tuple(retransmitted), gave_up, error)
