"""How long the side that closes first sits in FIN-WAIT-1: the delayed ACK of a FIN, measured.

A FIN that reaches an ESTABLISHED socket moves it to CLOSE-WAIT and puts it in "pingpong"
(interactive) mode (tcp_fin() in net/ipv4/tcp_input.c), so __tcp_ack_snd_check() does not ACK
at once but arms the delayed-ACK timer (tcp_send_delayed_ack() in net/ipv4/tcp_output.c): the
kernel hopes the application answers soon, so that the ACK rides on its reply or its own FIN.
The timer's length is the connection's ato: 0 if the socket never received data (ato is set
by tcp_event_data_recv() on the first data segment, and a bare FIN is not data), so the timer
fires at the next clock tick; after data at least TCP_ATO_MIN, which on loopback (tiny RTT) the
kernel bounds to TCP_DELACK_MIN. Meanwhile the closer waits in FIN-WAIT-1.

`measure_fin_wait_1` runs a few connections: the client closes (the server does nothing), and
the time from close() until the kernel shows the client out of FIN-WAIT-1 is polled by
addresses through sock_diag. Rules: every socket is closed on exit; each wait is bounded.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from ..kernel.lookup import ConnectionLookup
from ..model.states import TcpState
from ..timeouts import SHORT_TIMEOUT, poll_until
from .clients import close, connect, receive, send
from .server import LoopbackServer

#: include/net/tcp.h: TCP_DELACK_MIN is HZ/25 and TCP_ATO_MIN HZ/25 (40 ms), TCP_DELACK_MAX
#: HZ/5 (200 ms, the cap on any delayed ACK; tcp_delack_max()).
TCP_DELACK_MIN = 0.040
TCP_DELACK_MAX = 0.200

#: How often the client's state is asked: far finer than a clock tick (1 to 10 ms).
_POLL_INTERVAL = 0.0001


@dataclass(frozen=True)
class FinWait1Timing:
    """How long the client stayed in FIN-WAIT-1 after its close(), once per connection."""

    after_request: bool
    durations: tuple[float, ...]  # seconds, one per connection
    states_after: tuple[TcpState | None, ...]  # what each client showed next

    @property
    def fastest(self) -> float:
        """The shortest: the one least stretched by this process being scheduled late."""
        return min(self.durations)

    def as_text(self) -> str:
        what = "after a request and a reply" if self.after_request else "with no data exchanged"
        shown = ", ".join(f"{seconds * 1000:.1f} ms" for seconds in self.durations)
        return f"FIN-WAIT-1 {what}: {shown} (fastest {self.fastest * 1000:.1f} ms)"


def measure_fin_wait_1(*, after_request: bool = False, runs: int = 3) -> FinWait1Timing:
    """Close `runs` fresh clients first and time each one's FIN-WAIT-1 (see the module)."""
    if isinstance(runs, bool) or not isinstance(runs, int) or runs < 1:
        raise ValueError(f"runs must be a whole number of connections, at least 1; got {runs!r}")
    measured = [_one_close(after_request) for _ in range(runs)]
    return FinWait1Timing(
        after_request,
        tuple(seconds for seconds, _ in measured),
        tuple(state for _, state in measured),
    )


def _one_close(after_request: bool) -> tuple[float, TcpState | None]:
    with LoopbackServer(auto_accept=False) as server, ConnectionLookup() as lookup:
        client = connect(server.address)
        served = server.accept()
        try:
            if after_request:  # the server has now received data: its ato is set
                send(client, b"request\n")
                receive(served)
                send(served, b"reply\n")
                receive(client)
            request = [lookup.prepare(client.getsockname()[:2], server.address)]
            seen: list[TcpState | None] = [TcpState.FIN_WAIT_1]

            def left_fin_wait_1() -> bool:
                (found,) = lookup.states(request)
                seen[0] = found[0] if found else None
                # CLOSE: a moment while an orphan becomes a FIN-WAIT-2 timewait socket
                return seen[0] not in (TcpState.FIN_WAIT_1, TcpState.CLOSED)

            started = time.monotonic()
            close(client)  # the FIN; the server does nothing until we have seen its ACK
            poll_until(left_fin_wait_1, timeout=SHORT_TIMEOUT, interval=_POLL_INTERVAL)
            return time.monotonic() - started, seen[0]
        finally:
            close(client)
            close(served)
