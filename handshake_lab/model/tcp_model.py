"""A sans-IO model of both ends of a TCP connection: handshake, data and close, as Linux does it.

The rows live in ``tcp_rules`` (the RFC's table and Linux's overlays); this module runs them.
An ``Endpoint`` is one end: its state, sequence numbers and what its application has done
(unread data, close() called, an ACK held back); from those it picks the overlays that apply.
A ``Connection`` joins a client and a server over a lossless, in-order network and delivers
segments until the network is quiet, firing held-back ACKs when nothing else would carry them
(``settle``). The expected ladders (``expected_handshake``, ``expected_close``) and the
plain-English account of what the kernels did (``narrate``, built from the rows' phrases) are
derived here; replaying a real capture through the model lives in ``replay``.

Rules: no sockets, threads or clock; sequence numbers are arithmetic mod 2**32; an event the
table does not allow raises ``IllegalTransition`` and leaves the end unchanged.
There is no accept() or recv() event on purpose: they only take what the kernel already holds
and put nothing on the wire, so they are bookkeeping (``Connection.accept``, ``read``), not TCP
events. On Linux the listener itself stays LISTEN and a request socket goes through
SYN-RECEIVED; the model's server end stands for that connection, as RFC 9293's diagrams do.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

from .addresses import Address
from .packets import Segment
from .states import TcpState
from .tcp_rules import (
    ABORT_ON_OVERFLOW_RULES,
    CLOSED_BY_APPLICATION_RULES,
    DEFER_ACCEPT_RULES,
    DELAYED_ACK_TIMER_RULES,
    DELAYED_FIN_ACK_RULES,
    FULL_ACCEPT_QUEUE_RULES,
    FULL_QUEUE_AT_ACK_RULES,
    FULL_SYN_QUEUE_RULES,
    SYN_COOKIE_RULES,
    TRANSITIONS,
    UNREAD_DATA_RULES,
    Rule,
    RuleOverlay,
    TcpEvent,
)

__all__ = [
    "SEQUENCE_SPACE",
    "Connection",
    "Endpoint",
    "IllegalTransition",
    "LadderStep",
    "TcpEvent",
    "Transition",
    "expected_close",
    "expected_handshake",
    "narrate",
]

SEQUENCE_SPACE = 2**32

#: Where the model's ends live when the caller does not say (only labels; nothing is opened).
CLIENT_ADDRESS: Address = ("127.0.0.1", 49152)
SERVER_ADDRESS: Address = ("127.0.0.1", 8000)


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
    ``unread`` counts received bytes the application has not read; ``closed`` is True once the
    application called close() (not shutdown()); ``ack_owed`` while an ACK is held back.
    ``delays_fin_ack`` is Linux's delayed ACK of a FIN (off: the RFC's immediate ACK).
    Every call that looks a row up takes ``overlays``: tables whose rows replace the RFC's,
    the last one winning (e.g. ``(DEFER_ACCEPT_RULES,)`` for a listener with TCP_DEFER_ACCEPT);
    the overlays this end's own condition calls for come first.
    """

    name: str
    isn: int
    address: Address
    peer: Address
    state: TcpState = TcpState.CLOSED
    delays_fin_ack: bool = False
    snd_nxt: int = field(init=False)
    rcv_nxt: int | None = None
    unread: int = 0
    closed: bool = False
    ack_owed: bool = False

    def __post_init__(self) -> None:
        self.isn %= SEQUENCE_SPACE
        self.snd_nxt = self.isn

    def own_overlays(self) -> tuple[RuleOverlay, ...]:
        """The Linux rules this end's condition calls for, weakest first."""
        overlays: list[RuleOverlay] = []
        if self.delays_fin_ack:
            overlays.append(DELAYED_FIN_ACK_RULES)
        if self.ack_owed:
            overlays.append(DELAYED_ACK_TIMER_RULES)
        if self.closed:
            overlays.append(CLOSED_BY_APPLICATION_RULES)
        if self.unread:
            overlays.append(UNREAD_DATA_RULES)
        return tuple(overlays)

    def rule_for(self, event: TcpEvent, overlays: Sequence[RuleOverlay] = ()) -> Rule:
        """The row for ``event`` now; IllegalTransition names the state and the event."""
        key = (self.state, event)
        every = (*self.own_overlays(), *overlays)
        for overlay in reversed(every):
            if key in overlay:
                return overlay[key]
        if key in TRANSITIONS:
            return TRANSITIONS[key]
        allowed = sorted(
            {
                possible.value
                for table in (TRANSITIONS, *every)
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
        transition = self._take(
            rule, event, time, payload_len if event is TcpEvent.SEND else 0, None
        )
        if event in (TcpEvent.CLOSE, TcpEvent.ABORT):
            self.closed = True
        return transition

    def read(self) -> int:
        """The application reads everything received (recv()); nothing goes on the wire."""
        read, self.unread = self.unread, 0
        return read

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
        accepted = not ignored and event is not TcpEvent.RST and rule.send != "RST"
        if accepted:
            consumed = segment.payload_len + segment.has("SYN") + segment.has("FIN")
            self.rcv_nxt = _add(segment.seq, consumed)
            self.unread += segment.payload_len
        return self._take(rule, event, segment.time, 0, segment)

    def _take(
        self, rule: Rule, event: TcpEvent, time: float, payload_len: int, received: Segment | None
    ) -> Transition:
        from_state = self.state
        sent = None
        if rule.send and rule.delayed:
            self.ack_owed = True
        elif rule.send:
            sent = self._segment(rule.send, payload_len, time)
            if "ACK" in rule.send.split("+") or "RST" in rule.send.split("+"):
                self.ack_owed = False  # this segment carries what was held back
        self.state = rule.next_state
        if self.state is TcpState.CLOSED:
            self.ack_owed = False
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
    """A segment and each end's state once it has arrived (or was lost: ``lost``)."""

    segment: Segment
    client_state: TcpState
    server_state: TcpState
    lost: bool = False


class Connection:
    """A client and a server end joined by a lossless, in-order network, as Linux runs them.

    Each call applies one application event and then settles: it delivers segments until none
    is in flight and fires any ACK an end still holds back, returning every Transition in
    order (``deliver=False`` leaves the segments in flight, e.g. for a simultaneous close).
    The listener's situation is given by flags, each choosing rows from ``tcp_rules``:
    ``drop_next_syn`` (the accept queue is full when the next SYN comes: it is dropped, once),
    ``defer_accept`` (TCP_DEFER_ACCEPT), ``queue_full_at_ack`` (the accept queue fills between
    the SYN and the final ACK) with ``abort_on_overflow`` (the sysctl tcp_abort_on_overflow),
    ``syn_queue_full`` (listen()'s bound on half-finished connections is reached) with
    ``syncookies`` (tcp_syncookies), and ``delayed_ack`` (Linux's delayed ACK of a FIN).
    ``wire`` holds every segment sent; ``ladder`` every delivered segment with the states after it.
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
        queue_full_at_ack: bool = False,
        abort_on_overflow: bool = False,
        syn_queue_full: bool = False,
        syncookies: bool = True,
        delayed_ack: bool = True,
    ) -> None:
        self.client = Endpoint(
            "client", client_isn, client_address, server_address, delays_fin_ack=delayed_ack
        )
        self.server = Endpoint(
            "server", server_isn, server_address, client_address, delays_fin_ack=delayed_ack
        )
        listener: list[RuleOverlay] = []
        if syn_queue_full:
            listener.append(SYN_COOKIE_RULES if syncookies else FULL_SYN_QUEUE_RULES)
        if queue_full_at_ack:
            listener.append(
                ABORT_ON_OVERFLOW_RULES if abort_on_overflow else FULL_QUEUE_AT_ACK_RULES
            )
        if defer_accept:  # last: a bare ACK is ignored before the queue is even looked at
            listener.append(DEFER_ACCEPT_RULES)
        self.overlays: dict[str, tuple[RuleOverlay, ...]] = {
            "client": (),
            "server": tuple(listener),
        }
        self.drop_next_syn = drop_next_syn
        self.losing: list[str] = []  # flags of segments the network will lose, once each
        self.accepted = False
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
            transitions += self.settle()
        return transitions

    def listen(self) -> list[Transition]:
        return self.apply("server", TcpEvent.PASSIVE_OPEN)

    def connect(self) -> list[Transition]:
        return self.apply("client", TcpEvent.ACTIVE_OPEN)

    def send(self, end: str, payload_len: int) -> list[Transition]:
        return self.apply(end, TcpEvent.SEND, payload_len=payload_len)

    def shutdown(self, end: str) -> list[Transition]:
        return self.apply(end, TcpEvent.SHUTDOWN)

    def close(self, end: str) -> list[Transition]:
        return self.apply(end, TcpEvent.CLOSE)

    def abort(self, end: str) -> list[Transition]:
        return self.apply(end, TcpEvent.ABORT)

    def timeout(self, end: str) -> list[Transition]:
        return self.apply(end, TcpEvent.TIMEOUT)

    def lose_next(self, flags: str) -> None:
        """The network loses the next segment with these flags (e.g. "SYN+ACK"), once.

        A lost segment reaches nobody; the ends' retransmission timers (``timeout``) resend.
        """
        self.losing.append(flags)

    def read(self, end: str) -> int:
        """recv() on that end takes every byte received so far; nothing goes on the wire."""
        return self.end(end).read()

    def accept(self) -> None:
        """accept() took the server's connection off the queue; nothing goes on the wire."""
        self.accepted = True

    def close_listener(self) -> list[Transition]:
        """The listener is closed: before accept(), that takes the connection down with it."""
        if self.server.state is TcpState.LISTEN:
            return self.close("server")
        if self.accepted or self.server.state is TcpState.CLOSED:
            return []  # an accepted connection lives on without its listener
        return self.apply("server", TcpEvent.LISTENER_CLOSE)

    def settle(self) -> list[Transition]:
        """Deliver everything in flight, then fire held-back ACKs, until the network is quiet."""
        transitions = self.deliver()
        while owing := [end for end in (self.client, self.server) if end.ack_owed]:
            for end in owing:
                transitions += self.apply(end.name, TcpEvent.DELAYED_ACK, deliver=False)
            transitions += self.deliver()
        return transitions

    def deliver(self) -> list[Transition]:
        """Deliver segments in order until none is in flight."""
        transitions = []
        while self.in_flight:
            segment = self.in_flight.popleft()
            if segment.flags in self.losing:
                self.losing.remove(segment.flags)
                state = (self.client.state, self.server.state)
                self.ladder.append(LadderStep(segment, *state, lost=True))
                continue
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
