"""What a Recording computes from its events: pure, no sockets, no clock."""

from __future__ import annotations

import json

import pytest

from handshake_lab.kernel.tcp_info import AcceptQueue
from handshake_lab.model.states import TcpState
from handshake_lab.record.events import CALL, STATE, Event, Recording, describe_lane

LISTEN, ESTABLISHED, CLOSED = TcpState.LISTEN, TcpState.ESTABLISHED, TcpState.CLOSED


def test_queue_lengths_read_the_typed_queue_of_each_listeners_state_events():
    events = [
        Event.of_state(1, "listener", LISTEN, queue=AcceptQueue(0, 128)),
        Event(2, CALL, "listener", "accept()", actor="server", detail="queue 9/9"),
        Event.of_state(3, "client", ESTABLISHED),
        Event.of_state(4, "listener", LISTEN, queue=AcceptQueue(3, 128)),
        Event.of_state(5, "listener 2", LISTEN, queue=AcceptQueue(7, 128)),
        Event.of_state(6, "listener", LISTEN),
        Event.of_state(7, "listener", CLOSED),
    ]
    recording = Recording.from_events(events, 0, 8)
    assert recording.queue_lengths() == [0, 3]
    assert recording.queue_lengths("listener 2") == [7]
    assert recording.queue_lengths("client") == []


def test_a_state_event_is_named_by_its_state_and_carries_typed_fields():
    event = Event(1, STATE, "server 1", state=TcpState.SYN_RECEIVED, accepted=False)
    assert event.name == "SYN_RECV" and event.actor == "kernel" and event.detail == ""
    assert event == Event.of_state(1, "server 1", TcpState.SYN_RECEIVED, accepted=False)
    assert event.awaiting_accept and event.note == "not accepted"


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"kind": STATE, "name": "ESTABLISHED"}, "needs state=TcpState"),
        ({"kind": STATE, "state": "ESTABLISHED"}, "needs state=TcpState"),
        ({"kind": STATE, "name": "LISTEN", "state": ESTABLISHED}, "named by its state"),
        ({"kind": STATE, "state": ESTABLISHED, "detail": "not accepted"}, "has no detail"),
        ({"kind": STATE, "state": ESTABLISHED, "queue": AcceptQueue(1, 2)}, "only a LISTEN"),
        ({"kind": CALL, "name": "connect()", "state": ESTABLISHED}, "only a state event"),
        ({"kind": CALL, "name": "connect()", "accepted": False}, "only a state event"),
    ],
)
def test_a_state_event_must_be_typed_and_a_call_must_not_be(fields, message):
    with pytest.raises(ValueError, match=message):
        Event(time_ns=0, lane="client", **fields)


def test_state_spans_carry_the_fields_of_the_event_that_began_them():
    events = [
        Event.of_state(0, "server 1", ESTABLISHED, accepted=False),
        Event.of_state(5, "server 1", ESTABLISHED),
        Event.of_state(7, "server 1", CLOSED, gone=True),
    ]
    spans = Recording.from_events(events, 0, 9).state_spans()
    assert [(s.state, s.accepted, s.gone, s.start_ns, s.end_ns) for s in spans] == [
        (ESTABLISHED, False, False, 0, 5),
        (ESTABLISHED, True, False, 5, 7),
        (CLOSED, True, True, 7, 9),
    ]
    assert [s.awaiting_accept for s in spans] == [True, False, False]
    assert [s.note for s in spans] == ["not accepted", "", "gone from the kernel"]


@pytest.mark.parametrize(
    ("queue", "accepted", "gone", "words"),
    [
        (None, True, False, ""),
        (None, False, False, "not accepted"),
        (AcceptQueue(1, 128), True, False, "queue 1/128"),
        (None, False, True, "gone from the kernel"),
        (AcceptQueue(1, 128), True, True, "gone from the kernel"),
    ],
)
def test_the_one_place_the_fields_become_words(queue, accepted, gone, words):
    assert describe_lane(queue, accepted, gone) == words


def test_json_keeps_the_typed_fields_and_names_states_as_linux_does():
    events = [
        Event.of_state(1, "listener", LISTEN, queue=AcceptQueue(2, 128)),
        Event(2, CALL, "client", "connect()", "client"),
        Event.of_state(3, "server 1", TcpState.SYN_RECEIVED, accepted=False),
        Event.of_state(4, "server 1", CLOSED, accepted=False, gone=True),
    ]
    recording = Recording.from_events(events, 0, 5)
    text = recording.to_json()
    again = Recording.from_json(text)
    assert again == recording
    assert again.events[0].queue == AcceptQueue(2, 128)
    assert type(again.events[0].queue) is AcceptQueue and again.events[0].state is LISTEN
    assert [e.get("state") for e in json.loads(text)["events"]] == [
        "LISTEN",
        None,
        "SYN_RECV",
        "CLOSE",
    ]


def test_the_text_timeline_says_the_fields_in_words():
    events = [
        Event.of_state(0, "listener", LISTEN, queue=AcceptQueue(1, 128)),
        Event.of_state(1_000, "server 1", ESTABLISHED, accepted=False),
    ]
    lines = Recording.from_events(events, 0, 2_000).as_text().splitlines()
    assert lines[1].endswith("state LISTEN queue 1/128")
    assert lines[2].endswith("state ESTABLISHED not accepted")
