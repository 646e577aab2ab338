"""The TCP transition table: the RFC's rows and Linux's overlays, as data.

``TRANSITIONS`` maps (state, ``TcpEvent``) to a ``Rule``: the next state, the segment the
kernel sends (flags, or None) and a short phrase saying what the kernel does. It is the single
source of truth for the model (``tcp_model``), the expected ladders and every explanation the
stepper prints, in the style of h11's ``_state.py``.

Linux's departures from RFC 9293 are overlays: small tables whose rows replace the RFC's while
a condition holds (TCP_DEFER_ACCEPT, a full accept or SYN queue, unread data at close(), a
socket the application has closed, Linux's delayed ACK of a FIN). ``tcp_model`` chooses which
overlays apply; every row here was checked on real loopback sockets (tests/test_model_vs_kernel.py)
and, for the why, in the kernel source named beside it.

Rules: data only; no sockets, threads or clock.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import NamedTuple

from .states import TcpState


class TcpEvent(enum.Enum):
    """What can happen to one end: a call by its application, a timer, or a segment arriving.

    FIN_ACK is a FIN whose acknowledgement covers everything this end has sent (its own FIN
    included); FIN is any other FIN. The value is how a learner would say it.
    """

    PASSIVE_OPEN = "listen()"
    ACTIVE_OPEN = "connect()"
    SEND = "send()"
    SHUTDOWN = "shutdown(SHUT_WR)"
    CLOSE = "close()"
    ABORT = "close() with SO_LINGER 0"
    LISTENER_CLOSE = "the listener is closed before accept() took this connection"
    TIMEOUT = "a retransmission or TIME-WAIT timer fires"
    DELAYED_ACK = "the delayed-ACK timer fires"
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
    """One row of the table: where the end goes, what it sends, what its kernel does.

    ``delayed`` marks an ACK the kernel holds back (a delayed ACK): it goes out when the
    delayed-ACK timer fires, or earlier on the next segment this end sends anyway.
    """

    next_state: TcpState
    send: str | None
    does: str
    delayed: bool = False


#: A set of rows that replace the table's while a condition holds.
RuleOverlay = Mapping[tuple[TcpState, TcpEvent], Rule]

S, E = TcpState, TcpEvent
_RESET = "resets the connection with RST instead of a FIN, so no TIME-WAIT follows"
_FORGET = "forgets the connection without sending anything"
_DROP_ON_RST = "drops the connection on the RST; the next recv() or send() fails with ECONNRESET"
_ACK_LATE_DATA = "acknowledges data that still arrives after its own FIN (it still receives)"
_LAST_ACK = (
    "acknowledges the peer's FIN with the last ACK and waits in TIME-WAIT (60 s on Linux) "
    "for stray segments"
)
_PEER_FIN = "acknowledges the peer's FIN; recv() returns b'' once the data before it is read"
_NO_SOCKET = "has no connection for this segment, so it answers with RST"
_RELEASE = "lets the socket go; its FIN is already sent, so the kernel finishes the close by itself"
_FIN_ENDS_HANDSHAKE = (
    "takes the FIN as the end of the handshake, queues the connection for accept() and "
    "acknowledges the FIN"
)
_STOP_LISTENING = "stops listening; later SYNs are answered by RST"
_QUEUED_RESET = "resets the connection with RST because its listener closed before accept() took it"

#: RFC 9293's state machine for handshake, data and close: (state, event) -> Rule.
TRANSITIONS: Mapping[tuple[TcpState, TcpEvent], Rule] = {
    (S.CLOSED, E.PASSIVE_OPEN): Rule(
        S.LISTEN, None, "starts listening: from now on it answers SYNs for this port by itself"
    ),
    (S.CLOSED, E.ACTIVE_OPEN): Rule(
        S.SYN_SENT, "SYN", "sends a SYN carrying its initial sequence number while connect() waits"
    ),
    (S.CLOSED, E.CLOSE): Rule(S.CLOSED, None, "lets the socket go; the connection was gone"),
    # RFC 9293 3.10.7.1: a segment for a connection that does not exist is answered by RST.
    (S.CLOSED, E.SYN): Rule(
        S.CLOSED, "RST+ACK", "has nothing listening on that port, so it answers the SYN with RST"
    ),
    (S.CLOSED, E.ACK): Rule(S.CLOSED, "RST", _NO_SOCKET),
    (S.CLOSED, E.DATA): Rule(S.CLOSED, "RST", _NO_SOCKET),
    (S.CLOSED, E.FIN): Rule(S.CLOSED, "RST", _NO_SOCKET),
    (S.CLOSED, E.FIN_ACK): Rule(S.CLOSED, "RST", _NO_SOCKET),
    (S.CLOSED, E.RST): Rule(S.CLOSED, None, "ignores the RST: there is nothing to reset"),
    (S.LISTEN, E.SYN): Rule(
        S.SYN_RECEIVED, "SYN+ACK", "answers the SYN with SYN+ACK on its own, before any accept()"
    ),
    (S.LISTEN, E.CLOSE): Rule(S.CLOSED, None, _STOP_LISTENING),
    (S.LISTEN, E.ABORT): Rule(S.CLOSED, None, _STOP_LISTENING),
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
    (S.SYN_RECEIVED, E.FIN): Rule(S.CLOSE_WAIT, "ACK", _FIN_ENDS_HANDSHAKE),
    (S.SYN_RECEIVED, E.FIN_ACK): Rule(S.CLOSE_WAIT, "ACK", _FIN_ENDS_HANDSHAKE),
    (S.SYN_RECEIVED, E.RST): Rule(
        S.LISTEN, None, "drops the half-finished connection; the listener goes on listening"
    ),
    # Linux (tcp_check_req): a repeated SYN from the same client gets the SYN+ACK again.
    (S.SYN_RECEIVED, E.SYN): Rule(
        S.SYN_RECEIVED, "SYN+ACK", "answers the repeated SYN by sending its SYN+ACK again"
    ),
    (S.SYN_RECEIVED, E.TIMEOUT): Rule(
        S.SYN_RECEIVED, "SYN+ACK", "sends the SYN+ACK again when its retry timer fires"
    ),
    (S.SYN_RECEIVED, E.CLOSE): Rule(S.FIN_WAIT_1, "FIN+ACK", "sends a FIN"),
    (S.SYN_RECEIVED, E.ABORT): Rule(S.CLOSED, "RST+ACK", _RESET),
    (S.SYN_RECEIVED, E.LISTENER_CLOSE): Rule(
        S.CLOSED,
        None,
        "forgets the half-finished connection with its listener, sending nothing: the client, "
        "which believes it is connected, gets a RST when it next sends",
    ),
    # Linux (inet_csk_listen_stop): closing a listener resets what its accept queue holds.
    (S.ESTABLISHED, E.LISTENER_CLOSE): Rule(S.CLOSED, "RST+ACK", _QUEUED_RESET),
    (S.CLOSE_WAIT, E.LISTENER_CLOSE): Rule(S.CLOSED, "RST+ACK", _QUEUED_RESET),
    # Linux (tcp_validate_incoming, RFC 5961 4.2): a SYN on an established connection is
    # answered by a "challenge ACK"; measured: TcpExt TCPSYNChallenge and TCPChallengeACK +1.
    (S.ESTABLISHED, E.SYN_ACK): Rule(
        S.ESTABLISHED,
        "ACK",
        "answers the repeated SYN+ACK with a challenge ACK, the same ACK again, which tells "
        "a peer that missed the first one that the handshake is done",
    ),
    (S.ESTABLISHED, E.SEND): Rule(S.ESTABLISHED, "PSH+ACK", "sends the data"),
    (S.ESTABLISHED, E.DATA): Rule(
        S.ESTABLISHED, "ACK", "acknowledges the data and keeps it for recv()"
    ),
    (S.ESTABLISHED, E.ACK): Rule(
        S.ESTABLISHED, None, "learns that its data arrived and frees it from the send buffer"
    ),
    (S.ESTABLISHED, E.FIN): Rule(S.CLOSE_WAIT, "ACK", _PEER_FIN),
    (S.ESTABLISHED, E.FIN_ACK): Rule(S.CLOSE_WAIT, "ACK", _PEER_FIN),
    (S.ESTABLISHED, E.SHUTDOWN): Rule(
        S.FIN_WAIT_1,
        "FIN+ACK",
        "sends a FIN: this side will send no more data, but it still receives (a half-close)",
    ),
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
    (S.FIN_WAIT_1, E.CLOSE): Rule(S.FIN_WAIT_1, None, _RELEASE),
    (S.FIN_WAIT_1, E.ABORT): Rule(S.CLOSED, "RST+ACK", _RESET),
    (S.FIN_WAIT_1, E.RST): Rule(S.CLOSED, None, _DROP_ON_RST),
    (S.FIN_WAIT_2, E.DATA): Rule(S.FIN_WAIT_2, "ACK", _ACK_LATE_DATA),
    (S.FIN_WAIT_2, E.FIN): Rule(S.TIME_WAIT, "ACK", _LAST_ACK),
    (S.FIN_WAIT_2, E.FIN_ACK): Rule(S.TIME_WAIT, "ACK", _LAST_ACK),
    (S.FIN_WAIT_2, E.CLOSE): Rule(S.FIN_WAIT_2, None, _RELEASE),
    (S.FIN_WAIT_2, E.ABORT): Rule(S.CLOSED, "RST+ACK", _RESET),
    (S.FIN_WAIT_2, E.RST): Rule(S.CLOSED, None, _DROP_ON_RST),
    (S.CLOSE_WAIT, E.SEND): Rule(
        S.CLOSE_WAIT, "PSH+ACK", "sends data: the peer's FIN closed only the other direction"
    ),
    (S.CLOSE_WAIT, E.ACK): Rule(S.CLOSE_WAIT, None, "learns that its data arrived"),
    (S.CLOSE_WAIT, E.SHUTDOWN): Rule(
        S.LAST_ACK, "FIN+ACK", "sends its own FIN and waits for the last ACK"
    ),
    (S.CLOSE_WAIT, E.CLOSE): Rule(
        S.LAST_ACK, "FIN+ACK", "sends its own FIN and waits for the last ACK"
    ),
    (S.CLOSE_WAIT, E.ABORT): Rule(S.CLOSED, "RST+ACK", _RESET),
    (S.CLOSE_WAIT, E.RST): Rule(S.CLOSED, None, _DROP_ON_RST),
    (S.CLOSING, E.ACK): Rule(
        S.TIME_WAIT, None, "learns that its FIN arrived and waits in TIME-WAIT"
    ),
    (S.CLOSING, E.CLOSE): Rule(S.CLOSING, None, _RELEASE),
    (S.CLOSING, E.ABORT): Rule(S.CLOSED, None, _FORGET),
    (S.CLOSING, E.RST): Rule(S.CLOSED, None, _DROP_ON_RST),
    (S.LAST_ACK, E.ACK): Rule(S.CLOSED, None, "gets the last ACK and forgets the connection"),
    (S.LAST_ACK, E.CLOSE): Rule(S.LAST_ACK, None, _RELEASE),
    (S.LAST_ACK, E.ABORT): Rule(S.CLOSED, None, _FORGET),
    (S.LAST_ACK, E.RST): Rule(S.CLOSED, None, _DROP_ON_RST),
    (S.TIME_WAIT, E.TIMEOUT): Rule(
        S.CLOSED, None, "forgets the connection when TIME-WAIT ends (2 MSL, 60 s on Linux)"
    ),
    (S.TIME_WAIT, E.CLOSE): Rule(S.TIME_WAIT, None, _RELEASE),
    # A socket reaches TIME-WAIT before close() only after shutdown(); by then the kernel
    # keeps TIME-WAIT apart from the socket (tcp_time_wait), so SO_LINGER 0 cannot end it.
    (S.TIME_WAIT, E.ABORT): Rule(S.TIME_WAIT, None, _RELEASE),
    (S.TIME_WAIT, E.RST): Rule(S.CLOSED, None, "drops the TIME-WAIT entry on the RST"),
}

#: Linux's TCP_DEFER_ACCEPT on the listener replaces one row of the table.
DEFER_ACCEPT_RULES: RuleOverlay = {
    (S.SYN_RECEIVED, E.ACK): Rule(
        S.SYN_RECEIVED,
        None,
        "ignores the bare ACK because of TCP_DEFER_ACCEPT and stays SYN-RECEIVED until data "
        "arrives (or the deferral runs out), so accept() keeps waiting",
    ),
}

#: What Linux does with a SYN when the listener's accept queue is full (tcp_conn_request).
FULL_ACCEPT_QUEUE_RULES: RuleOverlay = {
    (S.LISTEN, E.SYN): Rule(
        S.LISTEN,
        None,
        "drops the SYN silently because the accept queue is full, so the client stays "
        "SYN-SENT and will retry",
    ),
}

_OVERFLOW_AT_ACK = (
    "drops the handshake's last segment because the accept queue is full: the server side "
    "stays SYN-RECEIVED and will send its SYN+ACK again, while the client already counts "
    "itself ESTABLISHED"
)
_ABORT_AT_ACK = (
    "answers the handshake's last segment with RST because the accept queue is full and "
    "tcp_abort_on_overflow is 1; the client's next call fails with ECONNRESET"
)

#: The accept queue filled between the SYN and the final ACK (tcp_check_req, listen_overflow).
FULL_QUEUE_AT_ACK_RULES: RuleOverlay = {
    (S.SYN_RECEIVED, E.ACK): Rule(S.SYN_RECEIVED, None, _OVERFLOW_AT_ACK),
    (S.SYN_RECEIVED, E.DATA): Rule(S.SYN_RECEIVED, None, _OVERFLOW_AT_ACK),
}

#: The same with the sysctl tcp_abort_on_overflow=1 (it does not change a SYN's fate).
ABORT_ON_OVERFLOW_RULES: RuleOverlay = {
    (S.SYN_RECEIVED, E.ACK): Rule(S.CLOSED, "RST", _ABORT_AT_ACK),
    (S.SYN_RECEIVED, E.DATA): Rule(S.CLOSED, "RST", _ABORT_AT_ACK),
}

#: listen(N) bounds the half-finished connections too; with tcp_syncookies a SYN that finds
#: that queue full is answered with a cookie, keeping no state (tcp_conn_request, cookie_v4_check).
SYN_COOKIE_RULES: RuleOverlay = {
    (S.LISTEN, E.SYN): Rule(
        S.LISTEN,
        "SYN+ACK",
        "answers with a SYN cookie because the SYN queue is full: a SYN+ACK whose sequence "
        "number encodes the connection, keeping no state",
    ),
    (S.LISTEN, E.ACK): Rule(
        S.ESTABLISHED,
        None,
        "rebuilds the connection from the cookie in the ACK and queues it for accept()",
    ),
}

#: The same with tcp_syncookies=0: the SYN is dropped and the client retries.
FULL_SYN_QUEUE_RULES: RuleOverlay = {
    (S.LISTEN, E.SYN): Rule(
        S.LISTEN,
        None,
        "drops the SYN silently because the SYN queue is full (and SYN cookies are off)",
    ),
}

_UNREAD_RESET = (
    "resets the connection with RST instead of a FIN because received data was never read "
    "(RFC 1122 4.2.2.13), so no TIME-WAIT follows"
)

#: close() while received data is still unread (tcp_close's data_was_unread).
UNREAD_DATA_RULES: RuleOverlay = {
    (state, E.CLOSE): Rule(S.CLOSED, "RST+ACK", _UNREAD_RESET)
    for state in (S.ESTABLISHED, S.CLOSE_WAIT, S.FIN_WAIT_1, S.FIN_WAIT_2)
}

_DATA_AFTER_CLOSE = (
    "answers with RST: data arrived for a socket its application has closed, so nobody "
    "could ever read it"
)

#: After close() (not after shutdown(SHUT_WR)) the socket no longer receives: new data is
#: answered by RST (tcp_rcv_state_process; tcp_timewait_state_process once FIN-WAIT-2 is
#: held by a timewait entry).
CLOSED_BY_APPLICATION_RULES: RuleOverlay = {
    (S.FIN_WAIT_1, E.DATA): Rule(S.CLOSED, "RST", _DATA_AFTER_CLOSE),
    (S.FIN_WAIT_2, E.DATA): Rule(S.CLOSED, "RST", _DATA_AFTER_CLOSE),
}

_HOLDS_FIN_ACK = (
    "holds the ACK of the peer's FIN back for a moment (a delayed ACK: it hopes to send it "
    "with its own FIN or data); recv() returns b'' once the data before the FIN is read"
)

_DEFERRED_FIN = (
    "takes the FIN as the end of the handshake and queues the connection for accept(), "
    "but holds the ACK of the FIN back for a moment (a delayed ACK)"
)

#: Linux delays the ACK of a FIN that arrives in ESTABLISHED (tcp_fin, tcp_send_delayed_ack).
DELAYED_FIN_ACK_RULES: RuleOverlay = {
    (S.ESTABLISHED, E.FIN): Rule(S.CLOSE_WAIT, "ACK", _HOLDS_FIN_ACK, delayed=True),
    (S.ESTABLISHED, E.FIN_ACK): Rule(S.CLOSE_WAIT, "ACK", _HOLDS_FIN_ACK, delayed=True),
    # A FIN that ends a deferred handshake makes the connection and is then handled alike.
    (S.SYN_RECEIVED, E.FIN): Rule(S.CLOSE_WAIT, "ACK", _DEFERRED_FIN, delayed=True),
    (S.SYN_RECEIVED, E.FIN_ACK): Rule(S.CLOSE_WAIT, "ACK", _DEFERRED_FIN, delayed=True),
}

#: What the delayed-ACK timer does when it fires with an ACK still owed.
DELAYED_ACK_TIMER_RULES: RuleOverlay = {
    (state, E.DELAYED_ACK): Rule(
        state, "ACK", "sends the ACK it held back when its delayed-ACK timer fires"
    )
    for state in (S.ESTABLISHED, S.CLOSE_WAIT)
}

del S, E
