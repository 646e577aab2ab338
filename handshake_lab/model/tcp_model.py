"""A sans-IO model of both ends of a TCP connection (RFC 9293): handshake, data and close.

The transition table ``TRANSITIONS`` is the single source of truth, in the style of h11's
``_state.py``: each (state, ``TcpEvent``) pair maps to the next state, the segment the kernel
sends (flags, or None) and a short phrase saying what the kernel does. Linux's departures from
the RFC are overlays: small tables (``DEFER_ACCEPT_RULES``, ``FULL_ACCEPT_QUEUE_RULES``) whose
rows replace the RFC's, passed as ``overlays`` to every call that looks a row up. The expected
ladders (``expected_handshake``, ``expected_close``) and the plain-English account of what the
kernels did (``narrate``, built from the rows' phrases) are derived from the table here; replaying
a real capture through it lives in ``replay``.

Rules: no sockets, threads or clock; sequence numbers are arithmetic mod 2**32; an event the
table does not allow raises ``IllegalTransition`` and leaves the end unchanged.
There is no accept() in this model on purpose: accept() only takes an ESTABLISHED connection
off the accept queue and puts nothing on the wire, so it is not a TCP event. On Linux the
listener itself stays LISTEN and a new request socket goes through SYN-RECEIVED; the model's
server end stands for that connection, as RFC 9293's diagrams do.
"""

from __future__ import annotations

import enum
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

from .addresses import Address
from .packets import Segment
from .states import TcpState

SEQUENCE_SPACE = 2**32

#: Where the model's ends live when the caller does not say (only labels; nothing is opened).
CLIENT_ADDRESS: Address = ("127.0.0.1", 49152)
SERVER_ADDRESS: Address = ("127.0.0.1", 8000)


class TcpEvent(enum.Enum):
    """What can happen to one end: a call by its application, a timer, or a segment arriving.

    FIN_ACK is a FIN whose acknowledgement covers everything this end has sent (its own FIN
    included); FIN is any other FIN. The value is how a learner would say it.
    """

    PASSIVE_OPEN = "listen()"
    ACTIVE_OPEN = "connect()"
    SEND = "send()"
    CLOSE = "close()"
    ABORT = "close() with SO_LINGER 0"
    TIMEOUT = "a timer fires"
    SYN = "a SYN arrives"
    SYN_ACK = "a SYN+ACK arrives"
    ACK = "an ACK arrives"
    DATA = "data arrives"
    FIN = "a FIN arrives"
    FIN_ACK = "a FIN+ACK acknowledging everything sent arrives"
    RST = "a RST arrives"

    @property
    def is_arrival(self) -> bool:
        """True for a segment arriving, False for an application call or a timer."""
        return self in _ARRIVALS


_ARRIVALS = frozenset(
    {
        TcpEvent.SYN,
        TcpEvent.SYN_ACK,
        TcpEvent.ACK,
        TcpEvent.DATA,
        TcpEvent.FIN,
        TcpEvent.FIN_ACK,
        TcpEvent.RST,
    }
)


class Rule(NamedTuple):
    """One row of the table: where the end goes, what it sends, what its kernel does."""

    next_state: TcpState
    send: str | None
    does: str


S, E = TcpState, TcpEvent
_RESET = "resets the connection with RST instead of a FIN, so no TIME-WAIT follows"
_FORGET = "forgets the connection without sending anything"
_DROP_ON_RST = "drops the connection on the RST; the next recv() or send() fails with ECONNRESET"
_ACK_LATE_DATA = "acknowledges data that still arrives after its own FIN"
_LAST_ACK = (
    "acknowledges the peer's FIN with the last ACK and waits in TIME-WAIT (60 s on Linux) "
    "for stray segments"
)
_PEER_FIN = "acknowledges the peer's FIN; recv() returns b'' once the data before it is read"

#: RFC 9293's state machine for handshake, data and close: (state, event) -> Rule.
TRANSITIONS: Mapping[tuple[TcpState, TcpEvent], Rule] = {
    (S.CLOSED, E.PASSIVE_OPEN): Rule(
        S.LISTEN, None, "starts listening: from now on it answers SYNs for this port by itself"
    ),
    (S.CLOSED, E.ACTIVE_OPEN): Rule(
        S.SYN_SENT, "SYN", "sends a SYN carrying its initial sequence number while connect() waits"
    ),
    (S.LISTEN, E.SYN): Rule(
        S.SYN_RECEIVED, "SYN+ACK", "answers the SYN with SYN+ACK on its own, before any accept()"
    ),
    (S.LISTEN, E.CLOSE): Rule(S.CLOSED, None, "stops listening; later SYNs are answered by RST"),
    (S.LISTEN, E.ABORT): Rule(S.CLOSED, None, "stops listening; later SYNs are answered by RST"),
    (S.SYN_SENT, E.SYN_ACK): Rule(
        S.ESTABLISHED, "ACK", "acknowledges the SYN+ACK with an ACK, so connect() returns"
    ),
    (S.SYN_SENT, E.SYN): Rule(
        S.SYN_RECEIVED, "SYN+ACK", "meets the peer's SYN (a simultaneous open) and answers SYN+ACK"
    ),
    (S.SYN_SENT, E.RST): Rule(
        S.CLOSED, None, "gets a RST because nothing listens there, so connect() raises ECONNREFUSED"
    ),
    (S.SYN_SENT, E.TIMEOUT): Rule(
        S.SYN_SENT, "SYN", "hears nothing back and sends the SYN again when its retry timer fires"
    ),
    (S.SYN_SENT, E.CLOSE): Rule(S.CLOSED, None, "gives up the connection attempt silently"),
    (S.SYN_SENT, E.ABORT): Rule(S.CLOSED, None, "gives up the connection attempt silently"),
    (S.SYN_RECEIVED, E.ACK): Rule(
        S.ESTABLISHED,
        None,
        "completes the handshake on the ACK and puts the connection on the accept queue, "
        "where accept() will find it",
    ),
    (S.SYN_RECEIVED, E.DATA): Rule(
        S.ESTABLISHED,
        "ACK",
        "takes the data as the end of the handshake, acknowledges it and queues the connection "
        "for accept()",
    ),
    (S.SYN_RECEIVED, E.RST): Rule(
        S.LISTEN, None, "drops the half-open connection; the listener goes on listening"
    ),
    (S.SYN_RECEIVED, E.TIMEOUT): Rule(
        S.SYN_RECEIVED, "SYN+ACK", "sends the SYN+ACK again when its retry timer fires"
    ),
    (S.SYN_RECEIVED, E.CLOSE): Rule(S.FIN_WAIT_1, "FIN+ACK", "sends a FIN"),
    (S.SYN_RECEIVED, E.ABORT): Rule(S.CLOSED, "RST+ACK", _RESET),
    (S.ESTABLISHED, E.SEND): Rule(S.ESTABLISHED, "PSH+ACK", "sends the data"),
    (S.ESTABLISHED, E.DATA): Rule(
        S.ESTABLISHED, "ACK", "acknowledges the data and keeps it for recv()"
    ),
    (S.ESTABLISHED, E.ACK): Rule(
        S.ESTABLISHED, None, "learns that its data arrived and frees it from the send buffer"
    ),
    (S.ESTABLISHED, E.FIN): Rule(S.CLOSE_WAIT, "ACK", _PEER_FIN),
    (S.ESTABLISHED, E.FIN_ACK): Rule(S.CLOSE_WAIT, "ACK", _PEER_FIN),
    (S.ESTABLISHED, E.CLOSE): Rule(
        S.FIN_WAIT_1, "FIN+ACK", "sends a FIN: this side will send no more data"
    ),
    (S.ESTABLISHED, E.ABORT): Rule(S.CLOSED, "RST+ACK", _RESET),
    (S.ESTABLISHED, E.RST): Rule(S.CLOSED, None, _DROP_ON_RST),
    (S.FIN_WAIT_1, E.ACK): Rule(
        S.FIN_WAIT_2, None, "learns that its FIN arrived and waits for the peer's FIN"
    ),
    (S.FIN_WAIT_1, E.FIN): Rule(
        S.CLOSING,
        "ACK",
        "gets the peer's FIN before the ACK of its own (both sides closed at once) and "
        "acknowledges it",
    ),
    (S.FIN_WAIT_1, E.FIN_ACK): Rule(
        S.TIME_WAIT,
        "ACK",
        "gets the peer's FIN, which also acknowledges its own, and answers with the last ACK",
    ),
    (S.FIN_WAIT_1, E.DATA): Rule(S.FIN_WAIT_1, "ACK", _ACK_LATE_DATA),
    (S.FIN_WAIT_1, E.ABORT): Rule(S.CLOSED, "RST+ACK", _RESET),
    (S.FIN_WAIT_1, E.RST): Rule(S.CLOSED, None, _DROP_ON_RST),
    (S.FIN_WAIT_2, E.DATA): Rule(S.FIN_WAIT_2, "ACK", _ACK_LATE_DATA),
    (S.FIN_WAIT_2, E.FIN): Rule(S.TIME_WAIT, "ACK", _LAST_ACK),
    (S.FIN_WAIT_2, E.FIN_ACK): Rule(S.TIME_WAIT, "ACK", _LAST_ACK),
    (S.FIN_WAIT_2, E.ABORT): Rule(S.CLOSED, "RST+ACK", _RESET),
    (S.FIN_WAIT_2, E.RST): Rule(S.CLOSED, None, _DROP_ON_RST),
    (S.CLOSE_WAIT, E.SEND): Rule(
        S.CLOSE_WAIT, "PSH+ACK", "sends data: the peer's FIN closed only the other direction"
    ),
    (S.CLOSE_WAIT, E.ACK): Rule(S.CLOSE_WAIT, None, "learns that its data arrived"),
    (S.CLOSE_WAIT, E.CLOSE): Rule(
        S.LAST_ACK, "FIN+ACK", "sends its own FIN and waits for the last ACK"
    ),
    (S.CLOSE_WAIT, E.ABORT): Rule(S.CLOSED, "RST+ACK", _RESET),
    (S.CLOSE_WAIT, E.RST): Rule(S.CLOSED, None, _DROP_ON_RST),
    (S.CLOSING, E.ACK): Rule(
        S.TIME_WAIT, None, "learns that its FIN arrived and waits in TIME-WAIT"
    ),
    (S.CLOSING, E.ABORT): Rule(S.CLOSED, None, _FORGET),
    (S.CLOSING, E.RST): Rule(S.CLOSED, None, _DROP_ON_RST),
    (S.LAST_ACK, E.ACK): Rule(S.CLOSED, None, "gets the last ACK and forgets the connection"),
    (S.LAST_ACK, E.ABORT): Rule(S.CLOSED, None, _FORGET),
    (S.LAST_ACK, E.RST): Rule(S.CLOSED, None, _DROP_ON_RST),
    (S.TIME_WAIT, E.TIMEOUT): Rule(
        S.CLOSED, None, "forgets the connection when TIME-WAIT ends (2 MSL, 60 s on Linux)"
    ),
    (S.TIME_WAIT, E.ABORT): Rule(S.CLOSED, None, _FORGET),
    (S.TIME_WAIT, E.RST): Rule(S.CLOSED, None, "drops the TIME-WAIT entry on the RST"),
}

#: A set of rows that replace the table's when passed in ``overlays``.
RuleOverlay = Mapping[tuple[TcpState, TcpEvent], Rule]

#: Linux's TCP_DEFER_ACCEPT on the listener replaces one row of the table.
DEFER_ACCEPT_RULES: RuleOverlay = {
    (S.SYN_RECEIVED, E.ACK): Rule(
        S.SYN_RECEIVED,
        None,
        "ignores the bare ACK because of TCP_DEFER_ACCEPT and stays SYN-RECEIVED until data "
        "arrives, so accept() keeps waiting",
    ),
}

#: What Linux does with a SYN when the listener's accept queue is full (one SYN only).
FULL_ACCEPT_QUEUE_RULES: RuleOverlay = {
    (S.LISTEN, E.SYN): Rule(
        S.LISTEN,
        None,
        "drops the SYN silently because the accept queue is full, so the client stays "
        "SYN-SENT and will retry",
    ),
}

del S, E


class IllegalTransition(ValueError):
    """An event the table does not allow in the end's current state; nothing was changed."""


@dataclass(frozen=True)
class Transition:
    """What one end did in one step: the record the stepper and ``narrate`` explain."""

    end: str
    from_state: TcpState
    event: TcpEvent
    to_state: TcpState
    sent: Segment | None
    description: str
    received: Segment | None = None

    @property
    def clause(self) -> str:
        """'the server's kernel answers the SYN ... (LISTEN → SYN-RECEIVED)', for joining."""
        clause = f"the {self.end}'s kernel {self.description}"
        if self.from_state is not self.to_state:
            clause += f" ({self.from_state.rfc_name} → {self.to_state.rfc_name})"
        return clause

    @property
    def sentence(self) -> str:
        """'The server's kernel answers the SYN ... (LISTEN → SYN-RECEIVED).'"""
        return _capitalised(self.clause) + "."


def _capitalised(text: str) -> str:
    return text[0].upper() + text[1:]


def narrate(transitions: list[Transition]) -> str:
    """One or two plain sentences telling what the kernels did, built from the table's phrases."""
    clauses = [transition.clause for transition in transitions]
    if not clauses:
        return "Nothing happens on the wire."
    first = _capitalised(clauses[0]) + "."
    rest = clauses[1:]
    if not rest:
        return first
    if len(rest) == 1:
        return f"{first} Then {rest[0]}."
    return f"{first} Then {', '.join(rest[:-1])}, and {rest[-1]}."


def _add(number: int, amount: int) -> int:
    return (number + amount) % SEQUENCE_SPACE


@dataclass
class Endpoint:
    """One end of the connection: its state and sequence variables (RFC 9293 section 3.3.1).

    ``snd_nxt`` is the next sequence number this end will send (its ISN until the SYN is out);
    ``rcv_nxt`` is the next one it expects from the peer (None until the peer's SYN arrives).
    Every call that looks a row up takes ``overlays``: tables whose rows replace the RFC's,
    the last one winning (e.g. ``(DEFER_ACCEPT_RULES,)`` for a listener with TCP_DEFER_ACCEPT).
    """

    name: str
    isn: int
    address: Address
    peer: Address
    state: TcpState = TcpState.CLOSED
    snd_nxt: int = field(init=False)
    rcv_nxt: int | None = None

    def __post_init__(self) -> None:
        self.isn %= SEQUENCE_SPACE
        self.snd_nxt = self.isn

    def rule_for(self, event: TcpEvent, overlays: Sequence[RuleOverlay] = ()) -> Rule:
        """The row for ``event`` now; IllegalTransition names the state and the event."""
        key = (self.state, event)
        for overlay in reversed(overlays):
            if key in overlay:
                return overlay[key]
        if key in TRANSITIONS:
            return TRANSITIONS[key]
        allowed = sorted(
            {
                possible.value
                for table in (TRANSITIONS, *overlays)
                for state, possible in table
                if state is self.state
            }
        )
        raise IllegalTransition(
            f"the {self.name} is in {self.state.display_name}, where "
            f"{event.name} ({event.value}) cannot happen; possible here: {', '.join(allowed)}"
        )

    def apply(
        self,
        event: TcpEvent,
        *,
        payload_len: int = 0,
        time: float = 0.0,
        overlays: Sequence[RuleOverlay] = (),
    ) -> Transition:
        """An application call or timer (not an arriving segment: use ``receive``)."""
        if event.is_arrival:
            raise ValueError(f"{event.name} is a segment arriving; call receive(segment) instead")
        rule = self.rule_for(event, overlays)
        return self._take(rule, event, time, payload_len if event is TcpEvent.SEND else 0, None)

    def classify(self, segment: Segment) -> TcpEvent:
        """Which arrival event a segment is for this end."""
        if segment.has("RST"):
            return TcpEvent.RST
        if segment.has("SYN"):
            return TcpEvent.SYN_ACK if segment.has("ACK") else TcpEvent.SYN
        if segment.has("FIN"):
            acks_everything = segment.has("ACK") and segment.ack == self.snd_nxt
            return TcpEvent.FIN_ACK if acks_everything else TcpEvent.FIN
        if segment.payload_len:
            return TcpEvent.DATA
        if segment.has("ACK"):
            return TcpEvent.ACK
        raise ValueError(f"a segment with flags {segment.flags!r} means nothing to TCP")

    def receive(self, segment: Segment, overlays: Sequence[RuleOverlay] = ()) -> Transition:
        """A segment arrives and the end follows its row (or the last overlay's)."""
        event = self.classify(segment)
        rule = self.rule_for(event, overlays)
        ignored = rule.send is None and rule.next_state is self.state
        if not ignored and event is not TcpEvent.RST:
            consumed = segment.payload_len + segment.has("SYN") + segment.has("FIN")
            self.rcv_nxt = _add(segment.seq, consumed)
        return self._take(rule, event, segment.time, 0, segment)

    def _take(
        self, rule: Rule, event: TcpEvent, time: float, payload_len: int, received: Segment | None
    ) -> Transition:
        from_state = self.state
        sent = self._segment(rule.send, payload_len, time) if rule.send else None
        self.state = rule.next_state
        return Transition(self.name, from_state, event, self.state, sent, rule.does, received)

    def _segment(self, flags: str, payload_len: int, time: float) -> Segment:
        if "SYN" in flags.split("+"):
            seq = self.isn  # a retransmitted SYN carries the same ISN
            self.snd_nxt = _add(self.isn, 1)
        else:
            seq = self.snd_nxt
            self.snd_nxt = _add(seq, payload_len + ("FIN" in flags.split("+")))
        ack = self.rcv_nxt if "ACK" in flags.split("+") and self.rcv_nxt is not None else 0
        return Segment(time, self.address, self.peer, flags, seq, ack, payload_len=payload_len)


class LadderStep(NamedTuple):
    """A segment and each end's state once it has arrived."""

    segment: Segment
    client_state: TcpState
    server_state: TcpState


class Connection:
    """A client and a server end joined by a lossless, in-order network.

    Each call applies one application event and then delivers segments until the network is
    quiet, returning every Transition in order. ``drop_next_syn`` makes the server drop the next
    SYN (Linux with a full accept queue: FULL_ACCEPT_QUEUE_RULES for that one SYN);
    ``defer_accept`` is Linux's TCP_DEFER_ACCEPT (DEFER_ACCEPT_RULES for the server, always).
    ``overlays`` holds each end's standing overlays; ``wire`` every segment sent; ``ladder``
    every delivered segment with the states after it.
    """

    def __init__(
        self,
        client_isn: int = 0,
        server_isn: int = 0,
        *,
        client_address: Address = CLIENT_ADDRESS,
        server_address: Address = SERVER_ADDRESS,
        drop_next_syn: bool = False,
        defer_accept: bool = False,
    ) -> None:
        self.client = Endpoint("client", client_isn, client_address, server_address)
        self.server = Endpoint("server", server_isn, server_address, client_address)
        self.overlays: dict[str, tuple[RuleOverlay, ...]] = {
            "client": (),
            "server": (DEFER_ACCEPT_RULES,) if defer_accept else (),
        }
        self.drop_next_syn = drop_next_syn
        self.in_flight: deque[Segment] = deque()
        self.wire: list[Segment] = []
        self.ladder: list[LadderStep] = []

    def end(self, name: str) -> Endpoint:
        if name not in ("client", "server"):
            raise ValueError(f"an end is 'client' or 'server', not {name!r}")
        return self.client if name == "client" else self.server

    def apply(
        self, end: str, event: TcpEvent, *, payload_len: int = 0, deliver: bool = True
    ) -> list[Transition]:
        transition = self.end(end).apply(
            event, payload_len=payload_len, time=len(self.wire), overlays=self.overlays[end]
        )
        transitions = [transition]
        self._put_on_wire(transition)
        if deliver:
            transitions += self.deliver()
        return transitions

    def listen(self) -> list[Transition]:
        return self.apply("server", TcpEvent.PASSIVE_OPEN)

    def connect(self) -> list[Transition]:
        return self.apply("client", TcpEvent.ACTIVE_OPEN)

    def send(self, end: str, payload_len: int) -> list[Transition]:
        return self.apply(end, TcpEvent.SEND, payload_len=payload_len)

    def close(self, end: str) -> list[Transition]:
        return self.apply(end, TcpEvent.CLOSE)

    def abort(self, end: str) -> list[Transition]:
        return self.apply(end, TcpEvent.ABORT)

    def timeout(self, end: str) -> list[Transition]:
        return self.apply(end, TcpEvent.TIMEOUT)

    def deliver(self) -> list[Transition]:
        """Deliver segments in order until none is in flight."""
        transitions = []
        while self.in_flight:
            segment = self.in_flight.popleft()
            receiver = self.server if segment.dst == self.server.address else self.client
            overlays = self.overlays[receiver.name]
            if receiver is self.server and self.drop_next_syn and segment.flags == "SYN":
                overlays, self.drop_next_syn = (*overlays, FULL_ACCEPT_QUEUE_RULES), False
            transition = receiver.receive(segment, overlays)
            self.ladder.append(LadderStep(segment, self.client.state, self.server.state))
            transitions.append(transition)
            self._put_on_wire(transition)
        return transitions

    def _put_on_wire(self, transition: Transition) -> None:
        if transition.sent is not None:
            self.wire.append(transition.sent)
            self.in_flight.append(transition.sent)


def expected_handshake(client_isn: int, server_isn: int) -> list[LadderStep]:
    """SYN seq=j; SYN+ACK seq=k ack=j+1; ACK seq=j+1 ack=k+1, with the states after each."""
    connection = Connection(client_isn, server_isn)
    connection.listen()
    connection.connect()
    return connection.ladder


def expected_close(client_isn: int, server_isn: int) -> list[LadderStep]:
    """The client closes first, then the server: FIN+ACK, ACK, FIN+ACK, ACK (no data sent)."""
    connection = Connection(client_isn, server_isn)
    connection.listen()
    connection.connect()
    handshake_len = len(connection.ladder)
    connection.close("client")
    connection.close("server")
    return connection.ladder[handshake_len:]
