"""Lose one segment of a real handshake, once, and watch the kernels' timers repair it.

A socket filter (``socket_filter``) on one end drops every incoming segment with the chosen
flags while both ends' states are sampled (sock_diag) and a ``LoopbackSniffer`` keeps every
segment; the sniffer taps the interface before TCP sees a segment, so the lost ones are in
the capture too. The filter is removed as soon as the first copy has been lost, so the next
one, sent by a retransmission timer, gets through:

- ``"syn"``: the listener drops the client's SYN; the client, in SYN-SENT, sends it again.
- ``"syn-ack"``: the client drops the SYN+ACK; the server's request socket (SYN-RECEIVED)
  and the client (SYN-SENT) both have a timer running; ``timers_fired`` reads which fired.
- ``"ack"``: the listener drops the final ACK; the client is ESTABLISHED, the server's end
  stays SYN-RECEIVED until its SYN+ACK timer fires and the client acknowledges again.

``model_ladder`` is what the TCP model (``model.tcp_model``) expects for a capture's loss.
Where it runs (root, a private namespace, or a recording) is ``lost_segments_evidence``.
Rules: sockets, filters and the sniffer are released by context managers; every wait is
bounded (KERNEL_TIMER_TIMEOUT covers the first retransmission, about 1 s).
"""

from __future__ import annotations

import dataclasses
import socket
import time
from collections.abc import Collection, Sequence
from typing import NamedTuple

from ..kernel.lookup import ConnectionLookup, socket_state
from ..model.packets import Segment
from ..model.states import TcpState
from ..model.tcp_model import Connection, LadderStep, TcpEvent
from ..timeouts import KERNEL_TIMER_TIMEOUT, LOOPBACK_TIMEOUT, SHORT_TIMEOUT, poll_until
from .evidence import Capture, StateSample, Tier, state_at
from .sniffer import LoopbackSniffer
from .socket_filter import ACK, SYN, FlagsRule, attach, detach

__all__ = [
    "LOSSES",
    "Loss",
    "LossCapture",
    "check_loss",
    "model_ladder",
    "run_loss",
    "timers_fired",
]

_SAMPLE_INTERVAL = 0.0005


class Loss(NamedTuple):
    """Which segment is lost: its flags, and the end whose filter drops it on arrival."""

    flags: str
    bits: int
    dropped_by: str  # "client" or "server" (the listener)


LOSSES = {
    "syn": Loss("SYN", SYN, "server"),
    "syn-ack": Loss("SYN+ACK", SYN | ACK, "client"),
    "ack": Loss("ACK", ACK, "server"),
}


@dataclasses.dataclass(frozen=True)
class LossCapture(Capture):
    """A Capture of a handshake that lost one segment: ``lost`` indexes the lost segments."""

    lose: str = ""
    lost: tuple[int, ...] = ()
    filter_removed: float = 0.0  # epoch time the filter came off

    @property
    def lost_flags(self) -> str:
        """The flags of the segment this experiment lost: "SYN", "SYN+ACK" or "ACK"."""
        return check_loss(self.lose).flags

    @property
    def retransmitted(self) -> list[Segment]:
        """The segments after the loss that carry the same flags again, in order."""
        flags = self.lost_flags
        return [s for s in self.segments if s.flags == flags and s.time > self.filter_removed]

    def timers_fired(self) -> tuple[str, ...]:
        """Which ends' retransmission timers repaired the loss, in order (see ``timers_fired``)."""
        return timers_fired(self.segments, self.lost)

    def model_ladder(self) -> list[LadderStep]:
        """What the TCP model sends for this loss (see ``model_ladder``)."""
        return model_ladder(self.segments, self.lost)

    def wire(self) -> list[str]:
        """Each segment's flags, in order, the lost ones marked: ["SYN (lost)", "SYN", ...]."""
        return [
            s.flags + (" (lost)" if i in self.lost else "") for i, s in enumerate(self.segments)
        ]

    def model_differences(self) -> list[str]:
        """Where the kernel's segments differ from the model's for this loss (empty: none)."""
        model = [s.segment.flags + (" (lost)" if s.lost else "") for s in self.model_ladder()]
        wire = self.wire()
        differences = [
            f"segment {i + 1}: kernel {k}, model {m}"
            for i, (k, m) in enumerate(zip(wire, model, strict=False))
            if k != m
        ]
        if len(wire) != len(model):
            differences.append(f"the kernel sent {len(wire)} segments, the model {len(model)}")
        return differences

    def wait_after_loss(self) -> float:
        """Seconds from the last lost segment to the next segment on the wire."""
        last = max(self.lost)
        return self.segments[last + 1].time - self.segments[last].time

    def held_states(self) -> tuple[TcpState | None, TcpState | None]:
        """(client, server): each end's state between the loss and the first segment after it."""
        after = next(s.time for s in self.segments if s.time > self.filter_removed)
        return state_at(self.states, "client", after), state_at(self.states, "server", after)

    def states_of(self, end: str) -> list[TcpState]:
        """The states one end ("client" or "server") went through, in order."""
        if end not in ("client", "server"):
            raise ValueError(f"end must be 'client' or 'server', not {end!r}")
        return [state for _, side, state in self.states if side == end]

    def as_text(self) -> str:
        """The state timeline: when each end changed state, after the first segment."""
        start = self.segments[0].time if self.segments else 0.0
        lines = [f"{'time':>9}  {'end':<7}state"]
        for when, side, state in self.states:
            lines.append(f"{(when - start) * 1000:6.1f} ms  {side:<7}{state.rfc_name}")
        return "\n".join(lines)

    def ladder_text(self) -> str:
        """One line per segment: time, direction, flags, and whether it was lost."""
        start = self.segments[0].time if self.segments else 0.0
        client = self.segments[0].src if self.segments else None
        lines = []
        for index, segment in enumerate(self.segments):
            arrow = "client → server" if segment.src == client else "server → client"
            lost = "  LOST" if index in self.lost else ""
            lines.append(f"{(segment.time - start) * 1000:7.1f} ms  {arrow}  {segment.flags}{lost}")
        return "\n".join(lines)


def check_loss(lose: str) -> Loss:
    """The Loss named by ``lose``; a ValueError lists the names."""
    if lose not in LOSSES:
        raise ValueError(f"lose must be one of {', '.join(map(repr, LOSSES))}, not {lose!r}")
    return LOSSES[lose]


# -- the experiment ------------------------------------------------------------------------------
def run_loss(lose: str, *, client_sends: bytes = b"") -> LossCapture:
    """Run the experiment here (see the module); PermissionError where filters or packet
    sockets are not allowed. ``client_sends``: data the client sends as soon as the filter is
    off and it is ESTABLISHED, instead of waiting for a timer to repair the loss."""
    loss = check_loss(lose)
    with socket.socket() as listener, socket.socket() as client, ConnectionLookup() as lookup:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        server_end = listener.getsockname()
        client.bind(("127.0.0.1", 0))
        client_end = client.getsockname()
        dropping = listener if loss.dropped_by == "server" else client
        attach(dropping, FlagsRule.exactly(loss.bits))
        with LoopbackSniffer(server_end[1]) as sniffer:
            try:
                states, removed = _connect_losing_once(
                    client, listener, lookup, sniffer, loss, (client_end, server_end), client_sends
                )
            finally:
                detach([dropping])
            if not sniffer.wait_for(
                lambda seen: _completed(seen, client_end, removed, bool(client_sends)),
                SHORT_TIMEOUT,
            ):
                raise TimeoutError(f"the last segment was not captured within {SHORT_TIMEOUT} s")
        listener.settimeout(LOOPBACK_TIMEOUT)
        accepted, _ = listener.accept()
        accepted.close()
    segments = list(sniffer.segments)
    lost = tuple(i for i, s in enumerate(segments) if s.flags == loss.flags and s.time < removed)
    return LossCapture(
        segments, Tier.LIVE, "", states, lose=lose, lost=lost, filter_removed=removed
    )


def _connect_losing_once(client, listener, lookup, sniffer, loss, ends, client_sends):
    """Connect; remove the filter once the first copy is lost; sample both ends until both
    are ESTABLISHED. Returns (state samples, epoch time the filter came off)."""
    client_end, server_end = ends
    requests = [lookup.prepare(client_end, server_end), lookup.prepare(server_end, client_end)]
    listening = socket_state(listener)  # the server's end, until its request socket exists
    dropping = listener if loss.dropped_by == "server" else client
    states: list[StateSample] = []
    latest: dict[str, TcpState] = {}
    removed = 0.0
    unsent = client_sends

    def both_established() -> bool:
        nonlocal removed, unsent
        found = lookup.states(requests)
        now = time.time()  # after the lookup: a state is never placed before its cause
        for side, row in zip(("client", "server"), found, strict=True):
            state = row[0] if row else (listening if side == "server" else None)
            if state is not None and latest.get(side) is not state:
                states.append((now, side, state))
                latest[side] = state
        if not removed and any(s.flags == loss.flags for s in sniffer.segments):
            detach([dropping])  # the first copy is lost; the retransmission will pass
            removed = time.time()
        if removed and unsent and latest.get("client") is TcpState.ESTABLISHED:
            unsent = unsent[client.send(unsent) :]  # a few bytes: one send() takes them all
        return (
            bool(removed) and latest.get("client") is latest.get("server") is TcpState.ESTABLISHED
        )

    client.setblocking(False)
    client.connect_ex(server_end)
    if not poll_until(both_established, timeout=KERNEL_TIMER_TIMEOUT, interval=_SAMPLE_INTERVAL):
        raise TimeoutError(
            f"the handshake did not complete within {KERNEL_TIMER_TIMEOUT} s after losing the "
            f"{loss.flags}: states seen {[(side, str(state)) for _, side, state in states]}"
        )
    return states, removed


def _completed(segments: list[Segment], client_end, removed: float, sent_data: bool) -> bool:
    """True once the client's segment that completed the handshake has been captured (and,
    after data, the server's ACK of it)."""
    after = [s for s in segments if s.time > removed and not s.has("SYN")]
    completing = next((s for s in after if s.src == tuple(client_end) and s.has("ACK")), None)
    if completing is None or not sent_data:
        return completing is not None
    return any(s.dst == tuple(client_end) and s.time >= completing.time for s in after)


# -- what the TCP model expects (pure: segments in, the model's ladder out) --------------------
def timers_fired(segments: Sequence[Segment], lost: Collection[int]) -> tuple[str, ...]:
    """Which ends' retransmission timers fired after the last loss, in the order their
    segments were captured: a repeated SYN is the client's timer; a SYN+ACK is the server's,
    unless it answers a repeated SYN (then the client's SYN came first)."""
    fired: list[str] = []
    unanswered_syns = 0
    for segment in segments[max(lost) + 1 :]:
        if segment.flags == "SYN":
            unanswered_syns += 1
            fired.append("client")
        elif segment.flags == "SYN+ACK":
            if unanswered_syns:
                unanswered_syns -= 1
            else:
                fired.append("server")
    return tuple(dict.fromkeys(fired))


def model_ladder(segments: Sequence[Segment], lost: Collection[int]) -> list[LadderStep]:
    """The TCP model's ladder for a handshake that lost these segments: each lost once, then
    the timers the capture shows firing, in that order, in one clock tick (both before
    anything they sent arrives: on loopback that is the only way both can fire); then the
    client's data, if the capture shows it sent some."""
    connection = Connection(segments[0].seq, 0)
    connection.listen()
    for index in sorted(lost):
        connection.lose_next(segments[index].flags)
    connection.connect()
    for end in timers_fired(segments, lost):
        connection.apply(end, TcpEvent.TIMEOUT, deliver=False)
    connection.settle()
    data = next((s for s in segments[max(lost) + 1 :] if s.payload_len), None)
    if data is not None and data.src == segments[0].src:
        connection.send("client", data.payload_len)
    return connection.ladder
