"""A sans-IO model of both ends of a TCP connection (RFC 9293): handshake, data and close.

The transition table ``TRANSITIONS`` is the single source of truth, in the style of h11's
``_state.py``: each (state, event) pair maps to the next state, the segment the kernel sends
(flags, or None) and a short phrase saying what the kernel does. The expected ladder
(``expected_handshake``, ``expected_close``), the check of a real capture (``check_handshake``)
and the stepper's sentences (``narrate``) are all derived from it.

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
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import NamedTuple

from .packets import Address, Segment
from .states import TcpState

SEQUENCE_SPACE = 2**32

#: Where the model's ends live when the caller does not say (only labels; nothing is opened).
CLIENT_ADDRESS: Address = ("127.0.0.1", 49152)
SERVER_ADDRESS: Address = ("127.0.0.1", 8000)


class Event(enum.Enum):
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
    {Event.SYN, Event.SYN_ACK, Event.ACK, Event.DATA, Event.FIN, Event.FIN_ACK, Event.RST}
)


class Rule(NamedTuple):
    """One row of the table: where the end goes, what it sends, what its kernel does."""

    next_state: TcpState
    send: str | None
    does: str


S, E = TcpState, Event
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
TRANSITIONS: Mapping[tuple[TcpState, Event], Rule] = {
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

#: Linux's TCP_DEFER_ACCEPT on the listener replaces one row of the table.
DEFER_ACCEPT_RULES: Mapping[tuple[TcpState, Event], Rule] = {
    (S.SYN_RECEIVED, E.ACK): Rule(
        S.SYN_RECEIVED,
        None,
        "ignores the bare ACK because of TCP_DEFER_ACCEPT and stays SYN-RECEIVED until data "
        "arrives, so accept() keeps waiting",
    ),
}

#: What Linux does with a SYN when the listener's accept queue is full (one SYN only).
FULL_ACCEPT_QUEUE_RULES: Mapping[tuple[TcpState, Event], Rule] = {
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
    event: Event
    to_state: TcpState
    sent: Segment | None
    description: str
    received: Segment | None = None

    @property
    def sentence(self) -> str:
        """'The server's kernel answers the SYN ... (LISTEN → SYN-RECEIVED).'"""
        return _clause(self)[0].upper() + _clause(self)[1:] + "."


def _add(number: int, amount: int) -> int:
    return (number + amount) % SEQUENCE_SPACE


@dataclass
class Endpoint:
    """One end of the connection: its state and sequence variables (RFC 9293 section 3.3.1).

    ``snd_nxt`` is the next sequence number this end will send (its ISN until the SYN is out);
    ``rcv_nxt`` is the next one it expects from the peer (None until the peer's SYN arrives).
    """

    name: str
    isn: int
    address: Address
    peer: Address
    state: TcpState = TcpState.CLOSED
    rules: Mapping[tuple[TcpState, Event], Rule] = field(
        default_factory=lambda: TRANSITIONS, repr=False
    )
    snd_nxt: int = field(init=False)
    rcv_nxt: int | None = None

    def __post_init__(self) -> None:
        self.isn %= SEQUENCE_SPACE
        self.snd_nxt = self.isn

    def rule_for(self, event: Event, extra_rules: Mapping | None = None) -> Rule:
        """The table row for ``event`` now; IllegalTransition names the state and the event."""
        key = (self.state, event)
        if extra_rules and key in extra_rules:
            return extra_rules[key]
        if key in self.rules:
            return self.rules[key]
        allowed = sorted(event.value for state, event in self.rules if state == self.state)
        state = self.state.rfc_name
        if self.state.linux_name != state.replace("-", "_"):
            state += f" (Linux: {self.state.linux_name})"
        raise IllegalTransition(
            f"the {self.name} is in {state}, where "
            f"{event.name} ({event.value}) cannot happen; possible here: {', '.join(allowed)}"
        )

    def apply(self, event: Event, *, payload_len: int = 0, time: float = 0.0) -> Transition:
        """An application call or timer (not an arriving segment: use ``receive``)."""
        if event.is_arrival:
            raise ValueError(f"{event.name} is a segment arriving; call receive(segment) instead")
        rule = self.rule_for(event)
        return self._take(rule, event, time, payload_len if event is Event.SEND else 0, None)

    def classify(self, segment: Segment) -> Event:
        """Which arrival event a segment is for this end."""
        if segment.has("RST"):
            return Event.RST
        if segment.has("SYN"):
            return Event.SYN_ACK if segment.has("ACK") else Event.SYN
        if segment.has("FIN"):
            acks_everything = segment.has("ACK") and segment.ack == self.snd_nxt
            return Event.FIN_ACK if acks_everything else Event.FIN
        if segment.payload_len:
            return Event.DATA
        if segment.has("ACK"):
            return Event.ACK
        raise ValueError(f"a segment with flags {segment.flags!r} means nothing to TCP")

    def receive(self, segment: Segment, extra_rules: Mapping | None = None) -> Transition:
        """A segment arrives; ``extra_rules`` (e.g. FULL_ACCEPT_QUEUE_RULES) override rows."""
        event = self.classify(segment)
        rule = self.rule_for(event, extra_rules)
        ignored = rule.send is None and rule.next_state is self.state
        if not ignored and event is not Event.RST:
            consumed = segment.payload_len + segment.has("SYN") + segment.has("FIN")
            self.rcv_nxt = _add(segment.seq, consumed)
        return self._take(rule, event, segment.time, 0, segment)

    def _take(
        self, rule: Rule, event: Event, time: float, payload_len: int, received: Segment | None
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
    SYN (Linux with a full accept queue); ``defer_accept`` is Linux's TCP_DEFER_ACCEPT. ``wire``
    holds every segment sent; ``ladder`` every delivered segment with the states after it.
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
        server_rules = {**TRANSITIONS, **DEFER_ACCEPT_RULES} if defer_accept else TRANSITIONS
        self.client = Endpoint("client", client_isn, client_address, server_address)
        self.server = Endpoint(
            "server", server_isn, server_address, client_address, rules=server_rules
        )
        self.drop_next_syn = drop_next_syn
        self.in_flight: deque[Segment] = deque()
        self.wire: list[Segment] = []
        self.ladder: list[LadderStep] = []

    def end(self, name: str) -> Endpoint:
        if name not in ("client", "server"):
            raise ValueError(f"an end is 'client' or 'server', not {name!r}")
        return self.client if name == "client" else self.server

    def apply(
        self, end: str, event: Event, *, payload_len: int = 0, deliver: bool = True
    ) -> list[Transition]:
        transition = self.end(end).apply(event, payload_len=payload_len, time=len(self.wire))
        transitions = [transition]
        self._put_on_wire(transition)
        if deliver:
            transitions += self.deliver()
        return transitions

    def listen(self) -> list[Transition]:
        return self.apply("server", Event.PASSIVE_OPEN)

    def connect(self) -> list[Transition]:
        return self.apply("client", Event.ACTIVE_OPEN)

    def send(self, end: str, payload_len: int) -> list[Transition]:
        return self.apply(end, Event.SEND, payload_len=payload_len)

    def close(self, end: str) -> list[Transition]:
        return self.apply(end, Event.CLOSE)

    def abort(self, end: str) -> list[Transition]:
        return self.apply(end, Event.ABORT)

    def timeout(self, end: str) -> list[Transition]:
        return self.apply(end, Event.TIMEOUT)

    def deliver(self) -> list[Transition]:
        """Deliver segments in order until none is in flight."""
        transitions = []
        while self.in_flight:
            segment = self.in_flight.popleft()
            receiver = self.server if segment.dst == self.server.address else self.client
            extra = None
            if receiver is self.server and self.drop_next_syn and segment.flags == "SYN":
                extra, self.drop_next_syn = FULL_ACCEPT_QUEUE_RULES, False
            transition = receiver.receive(segment, extra)
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


def _clause(transition: Transition) -> str:
    clause = f"the {transition.end}'s kernel {transition.description}"
    if transition.from_state is not transition.to_state:
        clause += f" ({transition.from_state.rfc_name} → {transition.to_state.rfc_name})"
    return clause


def narrate(transitions: list[Transition]) -> str:
    """One or two plain sentences telling what the kernels did, built from the table's phrases."""
    clauses = [_clause(transition) for transition in transitions]
    if not clauses:
        return "Nothing happens on the wire."
    first = clauses[0][0].upper() + clauses[0][1:] + "."
    rest = clauses[1:]
    if not rest:
        return first
    if len(rest) == 1:
        return f"{first} Then {rest[0]}."
    return f"{first} Then {', '.join(rest[:-1])}, and {rest[-1]}."


def _describe(segment: Segment) -> str:
    text = f"{segment.flags} seq={segment.seq}"
    return text + (f" ack={segment.ack}" if segment.has("ACK") else "")


def check_handshake(segments: list[Segment]) -> list[str]:
    """Compare a capture's first handshake to the model; return the problems (empty if none)."""
    syn = next((s for s in segments if s.flags == "SYN"), None)
    if syn is None:
        return ["no SYN was captured: start the capture before connect()"]
    client, server = syn.src, syn.dst
    conversation = [s for s in segments if {s.src, s.dst} == {client, server}]
    captured = conversation[conversation.index(syn) :]
    syn_ack = next((s for s in captured if s.src == server and s.has("SYN")), None)
    if syn_ack is None:
        return ["the server never answered the SYN with a SYN+ACK: is it listening?"]
    problems = []
    sides = {CLIENT_ADDRESS: "client", SERVER_ADDRESS: "server"}
    addresses = {"client": client, "server": server}
    for number, step in enumerate(expected_handshake(syn.seq, syn_ack.seq), start=1):
        expected = step.segment
        sender = sides[expected.src]
        wanted = f"{_describe(expected)} from the {sender}"
        if number > len(captured):
            problems.append(f"segment {number} is missing: expected {wanted}")
            continue
        got = captured[number - 1]
        got_sender = "client" if got.src == client else "server"
        mismatch = (
            got.src != addresses[sender]
            or got.flags != expected.flags
            or got.seq != expected.seq
            or (expected.has("ACK") and got.ack != expected.ack)
        )
        if mismatch:
            problems.append(
                f"segment {number}: expected {wanted}, captured {_describe(got)} "
                f"from the {got_sender}"
            )
    return problems


def _app_event_for(segment: Segment, sender: Endpoint) -> Event | None:
    """The application call (or timer) that made an end send a segment the model did not expect."""
    if segment.has("RST"):
        return Event.ABORT
    if segment.has("SYN"):
        return Event.TIMEOUT if sender.state is not TcpState.CLOSED else Event.ACTIVE_OPEN
    if segment.has("FIN"):
        return Event.CLOSE
    if segment.payload_len:
        return Event.SEND
    return None  # a window update or a duplicate ACK: no state change


def states_after_each(
    segments: list[Segment],
) -> list[tuple[TcpState | None, TcpState | None]]:
    """Replay a capture through the model: (client state, server state) after each segment.

    The first SYN decides who is the client. Segments of other connections keep the previous
    states; once the capture does something the model cannot follow, the states are None.
    """
    syn = next((s for s in segments if s.flags == "SYN"), None)
    if syn is None:
        return [(None, None)] * len(segments)
    syn_ack = next((s for s in segments if s.src == syn.dst and s.has("SYN")), None)
    connection = Connection(
        syn.seq,
        syn_ack.seq if syn_ack else 0,
        client_address=syn.src,
        server_address=syn.dst,
    )
    connection.listen()
    expected_flags: dict[str, deque[str]] = {"client": deque(), "server": deque()}
    current: tuple[TcpState | None, TcpState | None] = (None, None)
    lost = False
    results = []
    for segment in segments:
        if lost or {segment.src, segment.dst} != {syn.src, syn.dst} or segment.time < syn.time:
            results.append((None, None) if lost else current)
            continue
        sender_name = "client" if segment.src == syn.src else "server"
        sender = connection.end(sender_name)
        receiver = connection.end("server" if sender_name == "client" else "client")
        pending = expected_flags[sender_name]
        try:
            if pending and pending[0] == segment.flags:
                pending.popleft()
            else:
                event = _app_event_for(segment, sender)
                if event is not None:
                    # A FIN or data segment also carries any ACK the model was waiting for.
                    pending.clear()
                    sender.apply(event, payload_len=segment.payload_len)
            transition = receiver.receive(segment)
        except ValueError:  # IllegalTransition included
            lost = True
            results.append((None, None))
            continue
        if transition.sent is not None:
            expected_flags[receiver.name].append(transition.sent.flags)
        current = (connection.client.state, connection.server.state)
        results.append(current)
    return results
