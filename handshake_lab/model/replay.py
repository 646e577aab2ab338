"""Hold a captured list of segments up against the TCP model.

``check_handshake`` compares a capture's first handshake with the model's expected ladder and
says, one sentence per problem, what differs; ``states_after_each`` replays a capture through a
model ``Connection`` to say which state each end is in after every segment (what a ladder
diagram writes where no state was measured).
Rules: pure functions of ``Segment``s, no sockets or clock; the first SYN alone (``first_syn``)
decides which side is the client; the model's table is the only source of what is expected.
"""

from __future__ import annotations

from collections import deque

from .packets import Segment, first_syn
from .states import TcpState
from .tcp_model import (
    CLIENT_ADDRESS,
    SERVER_ADDRESS,
    Connection,
    Endpoint,
    expected_handshake,
)
from .tcp_rules import TcpEvent

__all__ = ["check_handshake", "states_after_each"]


def _describe(segment: Segment) -> str:
    text = f"{segment.flags} seq={segment.seq}"
    return text + (f" ack={segment.ack}" if segment.has("ACK") else "")


def check_handshake(segments: list[Segment]) -> list[str]:
    """Compare a capture's first handshake to the model; return the problems (empty if none)."""
    syn = first_syn(segments)
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


def _app_event_for(segment: Segment, sender: Endpoint) -> TcpEvent | None:
    """The application call (or timer) that made an end send a segment the model did not expect."""
    if segment.has("RST"):
        return TcpEvent.ABORT
    if segment.has("SYN"):
        return TcpEvent.TIMEOUT if sender.state is not TcpState.CLOSED else TcpEvent.ACTIVE_OPEN
    if segment.has("FIN"):
        return TcpEvent.CLOSE
    if segment.payload_len:
        return TcpEvent.SEND
    return None  # a window update or a duplicate ACK: no state change


def states_after_each(
    segments: list[Segment],
) -> list[tuple[TcpState | None, TcpState | None]]:
    """Replay a capture through the model: (client state, server state) after each segment.

    The first SYN decides who is the client. Segments of other connections keep the previous
    states; once the capture does something the model cannot follow, the states are None.
    """
    syn = first_syn(segments)
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
