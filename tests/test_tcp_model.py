"""The sans-IO TCP model: every row of the table, every illegal pair, and the derived ladders."""

from __future__ import annotations

import itertools

import pytest

from handshake_lab.model.packets import Segment
from handshake_lab.model.replay import check_handshake, states_after_each
from handshake_lab.model.states import TcpState
from handshake_lab.model.tcp_model import (
    Connection,
    Endpoint,
    IllegalTransition,
    expected_close,
    expected_handshake,
    narrate,
)
from handshake_lab.model.tcp_rules import (
    DEFER_ACCEPT_RULES,
    FULL_ACCEPT_QUEUE_RULES,
    TRANSITIONS,
    TcpEvent,
)

S, E = TcpState, TcpEvent
HERE, PEER = ("127.0.0.1", 1111), ("127.0.0.1", 2222)
OUR_SND_NXT = 1000


def make_endpoint(state: TcpState) -> Endpoint:
    endpoint = Endpoint("server", isn=OUR_SND_NXT - 1, address=HERE, peer=PEER, state=state)
    endpoint.snd_nxt, endpoint.rcv_nxt = OUR_SND_NXT, 5000
    return endpoint


def arriving(event: TcpEvent) -> Segment:
    """A segment that the endpoint above classifies as ``event``."""
    flags, ack, payload = {
        E.SYN: ("SYN", 0, 0),
        E.SYN_ACK: ("SYN+ACK", OUR_SND_NXT, 0),
        E.ACK: ("ACK", OUR_SND_NXT, 0),
        E.DATA: ("PSH+ACK", OUR_SND_NXT, 5),
        E.FIN: ("FIN+ACK", OUR_SND_NXT - 1, 0),
        E.FIN_ACK: ("FIN+ACK", OUR_SND_NXT, 0),
        E.RST: ("RST", 0, 0),
    }[event]
    return Segment(0.0, PEER, HERE, flags, 5000, ack, payload_len=payload)


def happen(endpoint: Endpoint, event: TcpEvent):
    if event.is_arrival:
        segment = arriving(event)
        assert endpoint.classify(segment) is event
        return endpoint.receive(segment)
    return endpoint.apply(event, payload_len=3)


# Written out by hand from RFC 9293's diagram, independently of the table under test.
RFC_ROWS = [
    (S.CLOSED, E.PASSIVE_OPEN, S.LISTEN, None),
    (S.CLOSED, E.ACTIVE_OPEN, S.SYN_SENT, "SYN"),
    (S.LISTEN, E.SYN, S.SYN_RECEIVED, "SYN+ACK"),
    (S.SYN_SENT, E.SYN_ACK, S.ESTABLISHED, "ACK"),
    (S.SYN_SENT, E.SYN, S.SYN_RECEIVED, "SYN+ACK"),
    (S.SYN_SENT, E.RST, S.CLOSED, None),
    (S.SYN_RECEIVED, E.ACK, S.ESTABLISHED, None),
    (S.ESTABLISHED, E.CLOSE, S.FIN_WAIT_1, "FIN+ACK"),
    (S.ESTABLISHED, E.FIN_ACK, S.CLOSE_WAIT, "ACK"),
    (S.ESTABLISHED, E.ABORT, S.CLOSED, "RST+ACK"),
    (S.FIN_WAIT_1, E.ACK, S.FIN_WAIT_2, None),
    (S.FIN_WAIT_1, E.FIN, S.CLOSING, "ACK"),
    (S.FIN_WAIT_1, E.FIN_ACK, S.TIME_WAIT, "ACK"),
    (S.FIN_WAIT_2, E.FIN_ACK, S.TIME_WAIT, "ACK"),
    (S.CLOSE_WAIT, E.CLOSE, S.LAST_ACK, "FIN+ACK"),
    (S.CLOSING, E.ACK, S.TIME_WAIT, None),
    (S.LAST_ACK, E.ACK, S.CLOSED, None),
    (S.TIME_WAIT, E.TIMEOUT, S.CLOSED, None),
]


@pytest.mark.parametrize(("state", "event", "next_state", "sends"), RFC_ROWS)
def test_rfc_rows(state, event, next_state, sends):
    transition = happen(make_endpoint(state), event)
    assert transition.to_state is next_state
    assert (transition.sent.flags if transition.sent else None) == sends


@pytest.mark.parametrize(("state", "event"), sorted(TRANSITIONS, key=str))
def test_every_legal_transition_follows_its_row(state, event):
    rule = TRANSITIONS[state, event]
    endpoint = make_endpoint(state)
    transition = happen(endpoint, event)
    assert (transition.from_state, transition.event, transition.to_state) == (
        state,
        event,
        rule.next_state,
    )
    assert endpoint.state is rule.next_state
    assert (transition.sent.flags if transition.sent else None) == rule.send
    assert transition.description == rule.does


ILLEGAL = [pair for pair in itertools.product(TcpState, TcpEvent) if pair not in TRANSITIONS]


@pytest.mark.parametrize(("state", "event"), ILLEGAL)
def test_every_illegal_transition_raises_and_changes_nothing(state, event):
    endpoint = make_endpoint(state)
    before = (endpoint.state, endpoint.snd_nxt, endpoint.rcv_nxt)
    with pytest.raises(IllegalTransition) as raised:
        happen(endpoint, event)
    assert state.rfc_name in str(raised.value)
    assert event.name in str(raised.value)
    assert (endpoint.state, endpoint.snd_nxt, endpoint.rcv_nxt) == before


def test_illegal_transition_is_a_value_error():
    assert issubclass(IllegalTransition, ValueError)


def test_apply_refuses_an_arrival_event():
    with pytest.raises(ValueError, match="receive"):
        make_endpoint(S.LISTEN).apply(E.SYN)


@pytest.mark.parametrize(
    ("client_isn", "server_isn"),
    [(0, 0), (1000, 5000), (2**32 - 1, 2**32 - 1), (2**32 - 1, 7), (3, 2**32 - 1)],
)
def test_expected_handshake_numbers(client_isn, server_isn):
    j, k = client_isn, server_isn
    syn, syn_ack, ack = expected_handshake(j, k)
    assert (syn.segment.flags, syn.segment.seq) == ("SYN", j)
    assert (syn_ack.segment.flags, syn_ack.segment.seq, syn_ack.segment.ack) == (
        "SYN+ACK",
        k,
        (j + 1) % 2**32,
    )
    assert (ack.segment.flags, ack.segment.seq, ack.segment.ack) == (
        "ACK",
        (j + 1) % 2**32,
        (k + 1) % 2**32,
    )
    assert [(s.client_state, s.server_state) for s in (syn, syn_ack, ack)] == [
        (S.SYN_SENT, S.SYN_RECEIVED),
        (S.ESTABLISHED, S.SYN_RECEIVED),
        (S.ESTABLISHED, S.ESTABLISHED),
    ]


def test_expected_close_wraps_around():
    j, k = 2**32 - 1, 2**32 - 2
    steps = expected_close(j, k)
    assert [(s.segment.flags, s.segment.seq, s.segment.ack) for s in steps] == [
        ("FIN+ACK", 0, k + 1),
        ("ACK", k + 1, 1),
        ("FIN+ACK", k + 1, 1),
        ("ACK", 1, 0),
    ]
    assert [(s.client_state, s.server_state) for s in steps] == [
        (S.FIN_WAIT_1, S.CLOSE_WAIT),
        (S.FIN_WAIT_2, S.CLOSE_WAIT),
        (S.TIME_WAIT, S.LAST_ACK),
        (S.TIME_WAIT, S.CLOSED),
    ]


def test_data_advances_sequence_numbers():
    connection = Connection(100, 200)
    connection.listen()
    connection.connect()
    connection.send("client", 6)
    data, ack = connection.wire[-2:]
    assert (data.flags, data.seq, data.payload_len) == ("PSH+ACK", 101, 6)
    assert (ack.flags, ack.ack) == ("ACK", 107)


def test_full_accept_queue_drops_the_syn_until_the_retry():
    connection = Connection(1, 2, drop_next_syn=True)
    connection.listen()
    transitions = connection.connect()
    assert connection.client.state is S.SYN_SENT
    assert connection.server.state is S.LISTEN
    assert transitions[-1].sent is None and "accept queue is full" in transitions[-1].description
    retry = connection.timeout("client")
    assert retry[0].sent.seq == 1  # the retransmitted SYN carries the same ISN
    assert (connection.client.state, connection.server.state) == (S.ESTABLISHED, S.ESTABLISHED)


def test_defer_accept_keeps_the_server_in_syn_received_until_data():
    connection = Connection(1, 2, defer_accept=True)
    connection.listen()
    connection.connect()
    assert (connection.client.state, connection.server.state) == (S.ESTABLISHED, S.SYN_RECEIVED)
    connection.send("client", 4)
    assert connection.server.state is S.ESTABLISHED
    assert connection.server.rcv_nxt == 2 + 4


def test_overlays_replace_rows_for_one_call_and_the_last_one_wins():
    endpoint = make_endpoint(S.LISTEN)
    syn = arriving(E.SYN)
    assert endpoint.rule_for(E.SYN) is TRANSITIONS[S.LISTEN, E.SYN]
    assert (
        endpoint.rule_for(E.SYN, (FULL_ACCEPT_QUEUE_RULES,))
        is FULL_ACCEPT_QUEUE_RULES[S.LISTEN, E.SYN]
    )
    # An overlay that has no row for this pair leaves the RFC's row in force.
    assert endpoint.rule_for(E.SYN, (DEFER_ACCEPT_RULES,)) is TRANSITIONS[S.LISTEN, E.SYN]
    later = {(S.LISTEN, E.SYN): TRANSITIONS[S.LISTEN, E.SYN]}
    assert endpoint.rule_for(E.SYN, (FULL_ACCEPT_QUEUE_RULES, later)) is later[S.LISTEN, E.SYN]
    dropped = endpoint.receive(syn, (FULL_ACCEPT_QUEUE_RULES,))
    assert (dropped.to_state, dropped.sent, endpoint.rcv_nxt) == (S.LISTEN, None, 5000)
    answered = endpoint.receive(syn)  # the overlay was for that call only
    assert (answered.to_state, answered.sent.flags) == (S.SYN_RECEIVED, "SYN+ACK")


def test_an_overlay_row_for_a_pair_the_rfc_lacks_is_legal_and_listed():
    endpoint = make_endpoint(S.TIME_WAIT)
    with pytest.raises(IllegalTransition, match="TIME-WAIT \\(TIME_WAIT\\)") as raised:
        endpoint.apply(E.SEND)
    assert "send()" not in str(raised.value).split("possible here:")[1]
    linger = {(S.TIME_WAIT, E.SEND): TRANSITIONS[S.TIME_WAIT, E.RST]}
    with pytest.raises(IllegalTransition) as raised:
        endpoint.apply(E.SHUTDOWN, overlays=(linger,))
    assert "send()" in str(raised.value).split("possible here:")[1]
    assert endpoint.apply(E.SEND, overlays=(linger,)).to_state is S.CLOSED


def test_simultaneous_close_passes_through_closing():
    connection = Connection(1, 2)
    connection.listen()
    connection.connect()
    connection.apply("client", E.CLOSE, deliver=False)
    connection.apply("server", E.CLOSE, deliver=False)
    transitions = connection.deliver()
    assert [t.to_state for t in transitions[:2]] == [S.CLOSING, S.CLOSING]
    assert (connection.client.state, connection.server.state) == (S.TIME_WAIT, S.TIME_WAIT)


def test_abort_sends_a_reset_and_the_peer_drops_the_connection():
    connection = Connection(1, 2)
    connection.listen()
    connection.connect()
    transitions = connection.abort("client")
    assert transitions[0].sent.flags == "RST+ACK"
    assert (connection.client.state, connection.server.state) == (S.CLOSED, S.CLOSED)


def test_narrate_builds_one_or_two_sentences_from_the_descriptions():
    connection = Connection(1, 2)
    connection.listen()
    transitions = connection.connect()
    text = narrate(transitions)
    for transition in transitions:
        assert transition.description in text
    assert text.startswith("The client's kernel") and text.endswith(".")
    assert text.count(". ") == 1
    assert "LISTEN → SYN-RECEIVED" in text
    single = narrate(transitions[:1])
    assert single == transitions[0].sentence
    assert narrate([]) == "Nothing happens on the wire."


def model_handshake(client_isn=10, server_isn=20) -> list[Segment]:
    connection = Connection(client_isn, server_isn)
    connection.listen()
    connection.connect()
    return connection.wire


def test_check_handshake_accepts_the_model_itself():
    assert check_handshake(model_handshake()) == []
    assert check_handshake(model_handshake(2**32 - 1, 2**32 - 1)) == []


def test_check_handshake_names_a_wrong_ack():
    syn, syn_ack, ack = model_handshake()
    wrong = Segment(syn_ack.time, syn_ack.src, syn_ack.dst, "SYN+ACK", syn_ack.seq, syn.seq)
    problems = check_handshake([syn, wrong, ack])
    assert len(problems) == 1 and problems[0].startswith("segment 2")
    assert f"ack={syn.seq + 1}" in problems[0]


def test_check_handshake_reports_missing_segments():
    syn, syn_ack, _ = model_handshake()
    assert check_handshake([syn, syn_ack]) == [
        f"segment 3 is missing: expected ACK seq={syn.seq + 1} ack={syn_ack.seq + 1} "
        "from the client"
    ]
    assert "no SYN" in check_handshake([])[0]
    assert "never answered" in check_handshake([syn])[0]


def test_states_after_each_replays_the_model_ladder():
    connection = Connection(5, 9)
    connection.listen()
    connection.connect()
    connection.send("client", 3)
    connection.close("client")
    connection.close("server")
    replayed = states_after_each(connection.wire)
    assert replayed == [(step.client_state, step.server_state) for step in connection.ladder]


def test_states_after_each_follows_linux_merging_ack_and_fin():
    connection = Connection(5, 9)
    connection.listen()
    connection.connect()
    connection.apply("client", E.CLOSE)
    fin = connection.wire[-2]
    merged = Segment(9.0, fin.dst, fin.src, "FIN+ACK", 10, fin.seq + 1)
    last_ack = Segment(10.0, fin.src, fin.dst, "ACK", fin.seq + 1, 11)
    replayed = states_after_each([*connection.wire[:3], fin, merged, last_ack])
    assert replayed[-3:] == [
        (S.FIN_WAIT_1, S.CLOSE_WAIT),
        (S.TIME_WAIT, S.LAST_ACK),
        (S.TIME_WAIT, S.CLOSED),
    ]


# -- Linux's rules, each measured on real sockets in tests/test_model_vs_kernel.py ---------
def _connected(**listener) -> Connection:
    connection = Connection(100, 200, **listener)
    connection.listen()
    connection.connect()
    return connection


def _flags(transitions) -> list[str]:
    return [t.sent.flags for t in transitions if t.sent is not None]


def test_the_ack_of_a_fin_is_held_back_until_the_delayed_ack_timer():
    connection = _connected()
    transitions = connection.close("client")
    assert _flags(transitions) == ["FIN+ACK", "ACK"]
    held = transitions[1]
    assert (held.to_state, held.sent) == (S.CLOSE_WAIT, None)
    assert "delayed ACK" in held.description
    assert transitions[2].event is E.DELAYED_ACK
    assert (connection.client.state, connection.server.state) == (S.FIN_WAIT_2, S.CLOSE_WAIT)


def test_a_fin_sent_before_the_delayed_ack_carries_it():
    connection = _connected()
    connection.apply("client", E.CLOSE, deliver=False)
    connection.deliver()  # the server holds its ACK back ...
    assert connection.server.ack_owed and connection.client.state is S.FIN_WAIT_1
    transitions = connection.close("server")  # ... and its own FIN carries it
    assert _flags(transitions) == ["FIN+ACK", "ACK"]
    assert not connection.server.ack_owed
    assert (connection.client.state, connection.server.state) == (S.TIME_WAIT, S.CLOSED)


def test_the_rfc_endpoint_acknowledges_a_fin_at_once():
    connection = _connected(delayed_ack=False)
    transitions = connection.close("client")
    assert transitions[1].sent.flags == "ACK" and transitions[1].event is E.FIN_ACK


def test_close_with_unread_data_sends_rst():
    connection = _connected()
    connection.send("client", 5)
    assert connection.server.unread == 5
    transitions = connection.close("server")
    assert _flags(transitions) == ["RST+ACK"]
    assert (connection.client.state, connection.server.state) == (S.CLOSED, S.CLOSED)


def test_reading_first_makes_close_send_a_fin():
    connection = _connected()
    connection.send("client", 5)
    assert connection.read("server") == 5
    assert _flags(connection.close("server")) == ["FIN+ACK", "ACK"]


def test_data_for_a_closed_socket_is_answered_with_rst_but_not_after_shutdown():
    closed = _connected()
    closed.close("client")
    assert _flags(closed.send("server", 4)) == ["PSH+ACK", "RST"]
    assert (closed.client.state, closed.server.state) == (S.CLOSED, S.CLOSED)
    half = _connected()
    half.shutdown("client")
    assert _flags(half.send("server", 4)) == ["PSH+ACK", "ACK"]
    assert (half.client.state, half.server.state) == (S.FIN_WAIT_2, S.CLOSE_WAIT)
    assert half.client.unread == 4


def test_closing_the_listener_resets_a_queued_connection_only():
    queued = _connected()
    assert _flags(queued.close_listener()) == ["RST+ACK"]
    assert (queued.client.state, queued.server.state) == (S.CLOSED, S.CLOSED)
    accepted = _connected()
    accepted.accept()
    assert accepted.close_listener() == []
    assert accepted.server.state is S.ESTABLISHED
    deferred = _connected(defer_accept=True)
    assert deferred.close_listener()[0].sent is None  # a request socket goes silently ...
    assert _flags(deferred.send("client", 3)) == ["PSH+ACK", "RST"]  # ... and RST answers later


def test_a_syn_to_a_port_nobody_listens_on_is_refused():
    connection = Connection(1, 2)
    transitions = connection.connect()
    assert _flags(transitions) == ["SYN", "RST+ACK"]
    assert "ECONNREFUSED" in transitions[-1].description


def test_the_accept_queue_full_at_the_final_ack():
    dropped = _connected(defer_accept=True, queue_full_at_ack=True)
    assert _flags(dropped.send("client", 3)) == ["PSH+ACK"]  # not acknowledged
    assert (dropped.client.state, dropped.server.state) == (S.ESTABLISHED, S.SYN_RECEIVED)
    aborted = _connected(defer_accept=True, queue_full_at_ack=True, abort_on_overflow=True)
    assert _flags(aborted.send("client", 3)) == ["PSH+ACK", "RST"]
    assert (aborted.client.state, aborted.server.state) == (S.CLOSED, S.CLOSED)
    # Without TCP_DEFER_ACCEPT the bare ACK itself meets the full queue.
    plain = _connected(queue_full_at_ack=True)
    assert (plain.client.state, plain.server.state) == (S.ESTABLISHED, S.SYN_RECEIVED)


def test_a_full_syn_queue_answers_with_a_cookie_or_drops_the_syn():
    cookie = _connected(syn_queue_full=True, defer_accept=True)
    assert [s.flags for s in cookie.wire] == ["SYN", "SYN+ACK", "ACK"]
    assert cookie.server.state is S.ESTABLISHED  # no request socket for DEFER_ACCEPT to hold
    dropped = _connected(syn_queue_full=True, syncookies=False)
    assert [s.flags for s in dropped.wire] == ["SYN"]
    assert (dropped.client.state, dropped.server.state) == (S.SYN_SENT, S.LISTEN)


def test_shutdown_then_close_sends_nothing_more_and_so_linger_cannot_end_time_wait():
    connection = _connected()
    connection.shutdown("client")
    connection.close("server")
    assert connection.client.state is S.TIME_WAIT
    assert connection.close("client")[0].sent is None
    assert connection.abort("client")[0].to_state is S.TIME_WAIT


@pytest.mark.parametrize("lost", ["SYN", "SYN+ACK", "ACK"])
def test_a_lost_handshake_segment_and_the_timer_that_resends(lost):
    connection = Connection(100, 200)
    connection.listen()
    connection.lose_next(lost)
    connection.connect()
    assert [step.segment.flags for step in connection.ladder if step.lost] == [lost]
    if lost == "SYN":
        assert (connection.client.state, connection.server.state) == (S.SYN_SENT, S.LISTEN)
        connection.timeout("client")  # the client's SYN timer resends the SYN
    elif lost == "SYN+ACK":
        assert (connection.client.state, connection.server.state) == (S.SYN_SENT, S.SYN_RECEIVED)
        connection.timeout("server")  # the request socket's timer resends the SYN+ACK
    else:
        assert (connection.client.state, connection.server.state) == (
            S.ESTABLISHED,
            S.SYN_RECEIVED,
        )
        transitions = connection.timeout("server")  # SYN+ACK again; the client ACKs again
        assert [t.sent.flags for t in transitions if t.sent] == ["SYN+ACK", "ACK"]
    assert (connection.client.state, connection.server.state) == (S.ESTABLISHED, S.ESTABLISHED)


def test_a_repeated_syn_gets_the_syn_ack_again():
    connection = Connection(100, 200)
    connection.listen()
    connection.lose_next("SYN+ACK")
    connection.connect()
    transitions = connection.timeout("client")  # the client's SYN timer fires first
    assert [t.sent.flags for t in transitions if t.sent] == ["SYN", "SYN+ACK", "ACK"]
    assert (connection.client.state, connection.server.state) == (S.ESTABLISHED, S.ESTABLISHED)


def test_a_lost_syn_ack_when_both_timers_fire_in_one_tick_as_linux_does():
    # Measured (tests/test_lost_segments.py): the request socket's SYN+ACK timer and the
    # client's SYN timer fire in the same clock tick, so both segments leave before either lands.
    connection = Connection(100, 200)
    connection.listen()
    connection.lose_next("SYN+ACK")
    connection.connect()
    connection.apply("server", TcpEvent.TIMEOUT, deliver=False)
    connection.apply("client", TcpEvent.TIMEOUT, deliver=False)
    connection.settle()
    ladder = [(step.segment.flags, step.lost) for step in connection.ladder]
    assert ladder == [
        ("SYN", False),
        ("SYN+ACK", True),
        ("SYN+ACK", False),  # the server's timer: the client is now ESTABLISHED
        ("SYN", False),  # the client's timer: the request socket answers it ...
        ("ACK", False),
        ("SYN+ACK", False),  # ... with its SYN+ACK again
        ("ACK", False),  # which the ESTABLISHED client answers with a challenge ACK
    ]
    assert (connection.client.state, connection.server.state) == (S.ESTABLISHED, S.ESTABLISHED)


def test_after_a_lost_ack_the_clients_first_data_completes_the_handshake():
    connection = Connection(100, 200)
    connection.listen()
    connection.lose_next("ACK")
    connection.connect()
    transitions = connection.send("client", 6)
    assert [(t.end, t.from_state, t.to_state) for t in transitions] == [
        ("client", S.ESTABLISHED, S.ESTABLISHED),
        ("server", S.SYN_RECEIVED, S.ESTABLISHED),
        ("client", S.ESTABLISHED, S.ESTABLISHED),
    ]
    assert [t.sent.flags for t in transitions if t.sent] == ["PSH+ACK", "ACK"]
    assert "challenge ACK" in connection.client.rule_for(TcpEvent.SYN_ACK).does
