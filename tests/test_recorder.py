"""The Recorder: calls and kernel states as one ordered, JSON-able timeline."""

from __future__ import annotations

import collections
import gc
import socket
import threading
import time

import pytest
from kernel_helpers import miss_one_lookup, wait_for

from handshake_lab.kernel.tcp_info import AcceptQueue
from handshake_lab.model.states import TcpState
from handshake_lab.net.clients import close, connect, receive, send, start_connect
from handshake_lab.net.server import LoopbackServer
from handshake_lab.net.trace import current_tracer
from handshake_lab.record import recorder as recorder_module
from handshake_lab.record.events import STATE, Event, Recording
from handshake_lab.record.recorder import Recorder

pytestmark = pytest.mark.kernel


def record_one_handshake() -> Recording:
    with Recorder() as recorder, LoopbackServer(auto_accept=False) as server:
        client = connect(server.address)
        recorder.sample()
        accepted = server.accept()
        recorder.sample()
        send(client, b"hi")
        assert receive(accepted) == b"hi"
        close(client)
        close(accepted)
    return recorder.recording


def test_connect_returns_and_the_server_side_is_established_before_accept():
    recording = record_one_handshake()
    connected = recording.first("return", "client", "connect()")
    accept_called = recording.first("call", "listener", "accept()")
    established_unaccepted = next(
        e
        for e in recording.events
        if e.lane == "server 1"
        and e.kind == STATE
        and e.state is TcpState.ESTABLISHED
        and not e.accepted
    )
    assert connected.time_ns < established_unaccepted.time_ns < accept_called.time_ns
    assert recording.states_of("client")[0] == "ESTABLISHED"
    assert "TIME_WAIT" in recording.states_of("client")
    assert recording.lanes() == ["listener", "client", "server 1"]
    server_side = [e for e in recording.events if e.kind == STATE and e.lane == "server 1"]
    assert server_side[-1].state is TcpState.CLOSED and server_side[-1].gone
    listener = [e for e in recording.events if e.kind == STATE and e.lane == "listener"]
    assert listener[0].state is TcpState.LISTEN and isinstance(listener[0].queue, AcceptQueue)
    assert 1 in recording.queue_lengths()  # sampled between connect() and accept()


def test_events_are_in_time_order_and_calls_pair_with_returns():
    recording = record_one_handshake()
    times = [event.time_ns for event in recording.events]
    assert times == sorted(times)
    spans = recording.call_spans()
    assert [(s.lane, s.name) for s in spans][:3] == [
        ("listener", "listen(128)"),
        ("client", "connect()"),
        ("listener", "accept()"),
    ]
    assert all(s.return_ns is not None and s.return_ns >= s.call_ns for s in spans)
    actors = {(s.lane, s.actor) for s in spans}
    assert ("client", "client") in actors and ("server 1", "server") in actors


def test_recording_round_trips_through_json():
    recording = record_one_handshake()
    again = Recording.from_json(recording.to_json())
    assert again == recording
    assert again.state_spans() == recording.state_spans()


def test_the_sampler_thread_sees_states_while_the_caller_is_blocked():
    with Recorder() as recorder, LoopbackServer(auto_accept=False) as server:
        client = connect(server.address)
        # No call is made while we wait: only the sampler thread can see the state.
        wait_for(
            lambda: "ESTABLISHED" in recorder.recording.states_of("server 1"),
            what="the sampler recording the server's side",
        )
        close(client)


def test_a_blocked_call_is_shown_as_still_blocked():
    events = [Event(10, "call", "listener", "accept()", "server")]
    (span,) = Recording.from_events(events, 0, 50).call_spans()
    assert span.return_ns is None and span.outcome == "still blocked"


def test_failed_calls_are_recorded_as_errors():
    with Recorder() as recorder, LoopbackServer(auto_accept=False) as server:
        with pytest.raises(TimeoutError):
            server.accept(timeout=0.01)
    (span,) = [s for s in recorder.recording.call_spans() if s.name == "accept()"]
    assert span.failed and "TimeoutError" in span.outcome


def test_state_spans_end_where_the_next_state_begins():
    events = [
        Event.of_state(0, "client", TcpState.SYN_SENT),
        Event.of_state(5, "client", TcpState.ESTABLISHED),
    ]
    first, second = Recording.from_events(events, 0, 9).state_spans()
    assert (first.state, first.start_ns, first.end_ns) == (TcpState.SYN_SENT, 0, 5)
    assert (second.state, second.start_ns, second.end_ns) == (TcpState.ESTABLISHED, 5, 9)


def test_a_nested_recorder_takes_over_and_each_records_once():
    with Recorder() as recorder:
        assert current_tracer() is recorder
        with Recorder() as inner:
            assert current_tracer() is inner
        assert current_tracer() is recorder
    assert current_tracer() is None
    with pytest.raises(RuntimeError, match="make a new Recorder"), recorder:
        pass
    recorder.stop()  # idempotent


@pytest.mark.parametrize("interval", [0, -1, "fast"])
def test_bad_interval_is_refused(interval):
    with pytest.raises(ValueError, match="positive number of seconds"):
        Recorder(interval=interval)


def test_bad_event_kind_is_refused():
    with pytest.raises(ValueError, match="event kind"):
        Event(0, "poke", "client", "x")


def test_each_connection_gets_one_server_lane_even_when_the_sampler_races_the_caller(monkeypatch):
    # The sampler thread may find a client mid-connect and add its server side while the
    # caller adds it too; a very short interval makes that race frequent. Who added each
    # server side is counted, and rounds go on until both threads have won it at least once,
    # so the test proves the race ran rather than passing on a round where it did not.
    winners = {"sampler": 0, "caller": 0}
    add_server_side, caller = Recorder._add_server_side, threading.current_thread()

    def counting(recorder, lane, local):
        added = add_server_side(recorder, lane, local)
        if added:
            thread = threading.current_thread()
            assert thread is caller or thread.name == "handshake-lab-recorder", thread
            winners["caller" if thread is caller else "sampler"] += 1
        return added

    monkeypatch.setattr(Recorder, "_add_server_side", counting)
    for _ in range(50):
        with Recorder(interval=0.0001) as recorder, LoopbackServer(auto_accept=False) as server:
            clients = [connect(server.address) for _ in range(100)]
            for client in clients:
                close(client)
        names = [view.lane for view in recorder.lane_states()]
        assert len(names) == len(set(names)) == 201, "listener, 100 clients, 100 server sides"
        if winners["sampler"] and winners["caller"]:
            break
    assert winners["sampler"] >= 1 and winners["caller"] >= 1, winners


def test_sampling_after_stop_changes_nothing():
    with Recorder() as recorder, LoopbackServer(auto_accept=False) as server:
        close(connect(server.address))
    before = recorder.recording
    recorder.sample()
    assert recorder.recording.events == before.events
    assert [view.lane for view in recorder.lane_states()] == ["listener", "client", "server 1"]


def counting_samples(monkeypatch) -> collections.Counter:
    """Count the sampling passes of each Recorder from now on, by id()."""
    passes: collections.Counter = collections.Counter()
    sample = Recorder._sample_unlocked

    def counted(recorder):
        passes[id(recorder)] += 1
        sample(recorder)

    monkeypatch.setattr(Recorder, "_sample_unlocked", counted)
    return passes


def test_a_sampler_with_no_socket_to_watch_sleeps_until_one_comes(monkeypatch):
    passes = counting_samples(monkeypatch)
    with Recorder() as recorder:
        wait_for(lambda: recorder.sampler_wait is None, what="the sampler going to sleep")
        before = passes[id(recorder)]
        time.sleep(0.05)  # not for ordering: a window in which a 1 ms beat would sample ~50 times
        assert passes[id(recorder)] == before, "the sampler sampled with nothing to sample"
        with LoopbackServer(auto_accept=False):  # a listener wakes it: its LISTEN is recorded
            wait_for(
                lambda: "LISTEN" in recorder.recording.states_of("listener"),
                what="the woken sampler recording the listener",
            )


def test_a_quiet_sampler_backs_off_and_a_call_brings_back_the_beat(monkeypatch):
    # A long idle interval, reached in two steps: only the call's wake-up can explain a
    # prompt sample after it.
    monkeypatch.setattr(recorder_module, "IDLE_AFTER", 0.02)
    monkeypatch.setattr(recorder_module, "IDLE_INTERVAL", 60.0)
    monkeypatch.setattr(recorder_module, "BACK_OFF", 1000)
    with Recorder() as recorder, LoopbackServer(auto_accept=False) as server:
        wait_for(lambda: recorder.sampler_wait == 60.0, what="the sampler backing off", timeout=5)
        client = connect(server.address)
        # No further call: the sampler, back on its beat, sees the server's side by itself.
        wait_for(
            lambda: "ESTABLISHED" in recorder.recording.states_of("server 1"),
            what="the sampler recording the server's side",
        )
        close(client)


def test_a_connection_in_syn_sent_keeps_the_sampler_on_its_beat(monkeypatch):
    # The kernel moves a SYN-SENT socket on by itself (a SYN retry answered): no back-off.
    monkeypatch.setattr(recorder_module, "IDLE_AFTER", 0.02)
    with Recorder() as recorder, LoopbackServer(backlog=0, auto_accept=False) as server:
        fillers = [connect(server.address)]  # listen(0) admits one connection
        waiting = start_connect(server.address)  # its SYN meets the full queue
        try:
            wait_for(
                lambda: (
                    "SYN_SENT" in recorder.recording.states_of("client 2")
                    and recorder.sampler_wait == recorder.interval
                ),
                what="the sampler recording client 2 in SYN_SENT",
            )
            deadline = time.monotonic() + 5 * recorder_module.IDLE_AFTER
            while time.monotonic() < deadline:  # long past IDLE_AFTER with no call or change
                assert recorder.sampler_wait == recorder.interval
                time.sleep(0.005)
        finally:
            close(waiting)
            for sock in fillers:
                close(sock)


def test_a_recorder_nobody_holds_stops_its_sampler():
    # A Stepper or a widget dropped without close() (a cell run again) drops its Recorder.
    recorder = Recorder(follow_helpers=False).__enter__()
    (thread,) = recorder._background._threads
    del recorder
    gc.collect()
    thread.join(timeout=2)
    assert not thread.is_alive(), "the sampler thread kept running for a Recorder nobody holds"


def test_a_forgotten_recorder_does_not_lock_out_the_next(monkeypatch):
    passes = counting_samples(monkeypatch)
    forgotten = Recorder().__enter__()  # never exited, as in a notebook cell
    try:
        wait_for(lambda: forgotten.sampler_wait is None, what="the forgotten sampler sleeping")
        before = passes[id(forgotten)]
        with Recorder() as recorder, LoopbackServer(auto_accept=False) as server:
            assert current_tracer() is recorder
            close(connect(server.address))
            close(server.accept())
        assert [s.name for s in recorder.recording.call_spans()] == [
            "listen(128)",
            "connect()",
            "close()",
            "accept()",
            "close()",
            "close()",
        ]
        assert "TIME_WAIT" in recorder.recording.states_of("client")
        # The forgotten one heard none of it, and its sampler slept throughout.
        assert not forgotten.recording.events and forgotten.sampler_wait is None
        assert passes[id(forgotten)] == before
        assert current_tracer() is forgotten
    finally:
        forgotten.stop()
    assert current_tracer() is None


def test_a_socket_closed_before_its_port_was_known_leaves_nothing_to_watch(monkeypatch):
    passes = counting_samples(monkeypatch)
    with Recorder() as recorder:
        before = passes[id(recorder)]
        sock = socket.socket()
        recorder.track(sock, "client", remote=("127.0.0.1", 9))  # wakes the sampler
        sock.close()  # never connected: no address to find it by, and nothing left to see
        wait_for(
            lambda: passes[id(recorder)] > before and recorder.sampler_wait is None,
            what="the sampler looking at the closed socket's lane, then going to sleep",
        )


def test_a_refused_connect_leaves_nothing_for_the_sampler_to_watch():
    with socket.socket() as bound:  # bound, not listening: a connect() to it is refused
        bound.bind(("127.0.0.1", 0))
        with Recorder() as recorder:
            with pytest.raises(ConnectionRefusedError):
                connect(bound.getsockname())
            wait_for(
                lambda: recorder.sampler_wait is None,
                what="the sampler going to sleep once the refused client's lane is over",
            )


@pytest.mark.parametrize("answer", [None, (TcpState.CLOSED, 0)], ids=["none", "CLOSE"])
def test_one_lookup_that_misses_a_connection_does_not_end_its_lane(answer):
    with Recorder() as recorder, LoopbackServer(auto_accept=False) as server:
        client = connect(server.address)
        accepted = server.accept()
        close(client)  # from now on the client's side is found by its addresses
        wait_for(
            lambda: "FIN_WAIT2" in recorder.recording.states_of("client"),
            what="the recorder seeing the client in FIN_WAIT2",
        )
        missed = miss_one_lookup(recorder, answer)
        wait_for(missed.is_set, what="the sampler's next lookup")
        close(accepted)  # the client's side goes on to TIME_WAIT: the lane must still follow
        wait_for(
            lambda: "TIME_WAIT" in recorder.recording.states_of("client"),
            what="the recorder following the client to TIME_WAIT after one missed lookup",
        )
    assert recorder.recording.states_of("client")[-2:] == ["FIN_WAIT2", "TIME_WAIT"]
    assert not any(e.gone for e in recorder.recording.events if e.lane == "client")
