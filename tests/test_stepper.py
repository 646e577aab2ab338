"""The stepper and its widget, clicked from the kernel side: the kernel's states after every
step of every scenario. Blocked steps are waited for with a bound; the only real kernel
timer waited for is the SYN retry in the full-queue scenario (about 1 s)."""

from __future__ import annotations

import gc

import pytest
from kernel_helpers import miss_one_lookup, wait_for

from handshake_lab.kernel.drop_counters import tcpext
from handshake_lab.kernel.sysctls import kernel_settings
from handshake_lab.model.states import TcpState
from handshake_lab.stepper.engine import Stepper
from handshake_lab.stepper.scenarios import SCENARIOS
from handshake_lab.timeouts import KERNEL_TIMER_TIMEOUT

pytestmark = pytest.mark.kernel

# After each step: {lane: state or None (not in the kernel)}, plus "accepted" lanes,
# "queue" (accept-queue length), "result" (a substring) and "wait" (a blocked call must
# finish before the states hold). States are the ones the kernel settles in.
EXPECTED = {
    "basic": [
        {"listener": "LISTEN", "queue": 0},
        {
            "client": "ESTABLISHED",
            "server 1": "ESTABLISHED",
            "queue": 1,
            "not accepted": ["server 1"],
        },
        {"server 1": "ESTABLISHED", "queue": 0, "accepted": ["server 1"]},
        {"result": "5 bytes"},
        {"result": "b'hello'"},
        {"result": "5 bytes"},
        {"result": "b'hello'"},
        {"client": "FIN_WAIT2", "server 1": "CLOSE_WAIT"},
        {"client": "TIME_WAIT", "server 1": "CLOSE"},
        {"listener": "CLOSE"},
    ],
    "full-queue": [
        {"listener": "LISTEN", "queue": 0},
        {"client": "ESTABLISHED", "server 1": "ESTABLISHED", "queue": 1},
        {"client 2": "SYN_SENT", "server 2": None, "queue": 1, "pending": "client2.connect()"},
        {
            "server 1": "ESTABLISHED",
            "accepted": ["server 1"],
            "wait": True,
            "then": {"client 2": "ESTABLISHED", "server 2": "ESTABLISHED"},
        },
        {"server 2": "ESTABLISHED", "accepted": ["server 2"], "queue": 0},
        {"client": "FIN_WAIT2", "server 1": "CLOSE_WAIT"},
        {"client 2": "FIN_WAIT2", "server 2": "CLOSE_WAIT"},
        {"client": "TIME_WAIT", "server 1": "CLOSE"},
        {"client 2": "TIME_WAIT", "server 2": "CLOSE"},
        {"listener": "CLOSE"},
    ],
    "defer-accept": [
        {"listener": "LISTEN"},
        {"client": "ESTABLISHED", "server 1": "SYN_RECV", "queue": 0},
        {"pending": "server.accept()", "server 1": "SYN_RECV"},
        {"wait": True, "then": {"server 1": "ESTABLISHED"}, "accepted": ["server 1"]},
        {"result": "b'hello'"},
        {"client": "FIN_WAIT2", "server 1": "CLOSE_WAIT"},
        {"client": "TIME_WAIT", "server 1": "CLOSE"},
        {"listener": "CLOSE"},
    ],
    "client-closes-first": [
        {"listener": "LISTEN"},
        {"client": "ESTABLISHED", "server 1": "ESTABLISHED"},
        {"accepted": ["server 1"]},
        {"client": "FIN_WAIT2", "server 1": "CLOSE_WAIT"},
        {"result": "b''"},
        {"client": "TIME_WAIT", "server 1": "CLOSE"},
        {"listener": "CLOSE"},
    ],
    "server-closes-first": [
        {"listener": "LISTEN"},
        {"client": "ESTABLISHED", "server 1": "ESTABLISHED"},
        {"accepted": ["server 1"]},
        {"server 1": "FIN_WAIT2", "client": "CLOSE_WAIT"},
        {"result": "b''"},
        {"server 1": "TIME_WAIT", "client": "CLOSE"},
        {"listener": "CLOSE"},
    ],
    "half-close": [
        {"listener": "LISTEN"},
        {"client": "ESTABLISHED", "server 1": "ESTABLISHED"},
        {"accepted": ["server 1"]},
        {"client": "FIN_WAIT2", "server 1": "CLOSE_WAIT"},
        {"result": "b''"},
        {"result": "5 bytes", "client": "FIN_WAIT2", "server 1": "CLOSE_WAIT"},
        {"result": "b'hello'"},
        {"client": "TIME_WAIT", "server 1": "CLOSE"},
        {"client": "TIME_WAIT"},
        {"listener": "CLOSE"},
    ],
    "unread-data": [
        {"listener": "LISTEN"},
        {"client": "ESTABLISHED", "server 1": "ESTABLISHED"},
        {"accepted": ["server 1"]},
        {"result": "5 bytes"},
        {"client": "CLOSE", "server 1": "CLOSE"},
        {"result": "ConnectionResetError"},
        {"client": "CLOSE"},
        {"listener": "CLOSE"},
    ],
    "listener-closes": [
        {"listener": "LISTEN"},
        {"client": "ESTABLISHED", "server 1": "ESTABLISHED", "not accepted": ["server 1"]},
        {"listener": "CLOSE", "client": "CLOSE"},
        {"result": "ConnectionResetError"},
        {"client": "CLOSE"},
    ],
}

_SKIP = {"defer-accept": kernel_settings().syncookies == 2}


def _states_hold(snapshot, expected: dict) -> bool:
    for lane, state in expected.items():
        if lane in ("queue", "result", "accepted", "not accepted", "pending", "wait", "then"):
            continue
        actual = snapshot.state_of(lane)
        if (actual.linux_name if actual else None) != state:
            return False
    return True


#: TcpExt's count of connections closed with no TIME-WAIT (or FIN-WAIT-2) entry because the
#: table already held net.ipv4.tcp_max_tw_buckets of them (net/ipv4/tcp_minisocks.c).
TIME_WAIT_OVERFLOW = "TCPTimeWaitOverflow"
_overflows_at_start = {}


@pytest.fixture(autouse=True)
def _time_wait_overflows_at_start(request):
    _overflows_at_start[request.node.nodeid] = tcpext().get(TIME_WAIT_OVERFLOW, 0)
    yield
    del _overflows_at_start[request.node.nodeid]


def _skip_if_the_time_wait_table_was_full(expected: dict) -> None:
    """A machine whose TIME-WAIT table is full (other programs' connections, a load test's)
    closes ours with no FIN-WAIT-2 or TIME-WAIT entry: that is the machine, not the stepper."""
    if not any(value in ("FIN_WAIT2", "TIME_WAIT") for value in expected.values()):
        return
    (before,) = _overflows_at_start.values()
    grown = tcpext().get(TIME_WAIT_OVERFLOW, 0) - before
    if grown > 0:
        pytest.skip(
            f"the kernel's TIME-WAIT table was full during this test ({TIME_WAIT_OVERFLOW} "
            f"grew by {grown}): see net.ipv4.tcp_max_tw_buckets"
        )


def check_step(stepper, snapshot, expected: dict, label: str):
    if "pending" in expected:
        assert expected["pending"] in snapshot.pending, (label, snapshot.pending)
    if expected.get("wait"):
        snapshot = stepper.wait(KERNEL_TIMER_TIMEOUT)
        assert not snapshot.pending
        expected = {**expected, **expected["then"]}

    def settled():
        current = stepper.snapshot()
        return current if _states_hold(current, expected) else None

    try:
        snapshot = wait_for(settled, what=f"the states after {label}: {expected}")
    except AssertionError:
        _skip_if_the_time_wait_table_was_full(expected)
        raise
    if "queue" in expected:
        assert snapshot.accept_queue.length == expected["queue"], label
    if "result" in expected:
        assert expected["result"] in snapshot.result, (label, snapshot.result)
    views = {view.lane: view for view in snapshot.sockets}
    for lane in expected.get("accepted", []):
        assert views[lane].accepted, f"{lane} should be accepted after {label}"
    for lane in expected.get("not accepted", []):
        assert not views[lane].accepted, f"{lane} should wait in the queue after {label}"
    return snapshot


@pytest.mark.parametrize("scenario", list(EXPECTED))
def test_every_scenario_step_by_step(scenario):
    if _SKIP.get(scenario):
        pytest.skip("tcp_syncookies=2: there is no SYN-RECEIVED state to defer")
    assert len(EXPECTED[scenario]) == len(SCENARIOS[scenario].steps)
    with Stepper(scenario) as stepper:
        for step, expected in zip(SCENARIOS[scenario].steps, EXPECTED[scenario], strict=True):
            snapshot = stepper.step()
            assert snapshot.step == step.label
            assert snapshot.explanation
            check_step(stepper, snapshot, expected, step.label)
        final = stepper.wait(KERNEL_TIMER_TIMEOUT)
        assert final.finished and final.next_steps == ()


def test_explanations_come_from_the_model_transitions():
    with Stepper("basic") as stepper:
        stepper.step()
        connected = stepper.step()
        assert "SYN" in connected.explanation and "SYN+ACK" in connected.explanation
        assert "(SYN-SENT → ESTABLISHED)" in connected.explanation
        accepted = stepper.step()
        assert "Nothing goes on the wire" in accepted.explanation


def test_connect_before_listen_is_refused_by_the_kernel():
    with Stepper("basic", in_order=False) as stepper:
        assert {"server.listen()", "client.connect()"} <= set(stepper.snapshot().next_steps)
        snapshot = stepper.step("client.connect()")
        snapshot = stepper.wait(KERNEL_TIMER_TIMEOUT)
        assert "ConnectionRefusedError" in snapshot.result


def test_accept_before_connect_blocks_until_a_client_connects():
    with Stepper("basic", in_order=False) as stepper:
        stepper.step("server.listen()")
        blocked = stepper.step("server.accept()")
        assert blocked.pending == ("server.accept()",)
        assert "accept queue holds no finished connection" in blocked.explanation
        stepper.step("client.connect()")
        done = stepper.wait(KERNEL_TIMER_TIMEOUT)
        assert not done.pending
        assert {v.lane: v.accepted for v in done.sockets}["server 1"]


def test_a_blocked_call_finishing_is_reported_but_never_replaces_the_step_just_taken():
    changes = []
    with Stepper("basic", in_order=False, on_change=changes.append) as stepper:
        stepper.step("server.listen()")
        assert stepper.step("server.accept()").pending == ("server.accept()",)
        connected = stepper.step("client.connect()")  # wakes the blocked accept()
        assert connected.step == "client.connect()", "a step's snapshot is that step's"
        stepper.wait(KERNEL_TIMER_TIMEOUT)
        assert [(c.step, c.pending) for c in changes] == [("server.accept()", ())]
        assert changes[0].result.startswith("a new socket (server 1)")


def test_after_cancel_a_later_blocked_call_still_waits_and_finishes():
    with Stepper("basic", in_order=False) as stepper:
        for label in ("server.listen()", "client.connect()", "client.recv()"):
            stepper.step(label)
        assert stepper.cancel().result == "cancelled"
        stepper.step("server.accept()")
        assert stepper.step("conn.recv()").pending == ("conn.recv()",)
        stepper.step("client.send(b'hello')")
        received = stepper.wait(KERNEL_TIMER_TIMEOUT)
        assert received.step == "conn.recv()" and received.result == "b'hello'"


def test_an_error_in_on_change_is_handed_back_not_lost():
    def broken(snapshot):
        raise ValueError("the widget could not draw")

    stepper = Stepper("basic", in_order=False, on_change=broken)
    stepper.step("server.listen()")
    stepper.step("server.accept()")
    stepper.step("client.connect()")
    with pytest.raises(RuntimeError, match="stepper thread failed") as raised:
        stepper.wait(KERNEL_TIMER_TIMEOUT)
    assert isinstance(raised.value.__cause__, ValueError)
    with pytest.raises(RuntimeError, match="stepper thread failed"):
        stepper.close()  # everything is closed all the same (the leak check says so)


def test_every_call_is_drawn_on_its_sockets_lane():
    with Stepper("full-queue") as stepper:
        for _ in range(3):
            stepper.step()
        lanes = stepper.recording.lanes()
    assert {"listener", "client", "client 2"} <= set(lanes) and "client2" not in lanes


def test_a_blocked_call_can_be_cancelled_and_the_stepper_reset():
    with Stepper("basic", in_order=False) as stepper:
        stepper.step("server.listen()")
        assert stepper.step("server.accept()").pending
        cancelled = stepper.cancel()
        assert cancelled.pending == () and cancelled.result == "cancelled"
        fresh = stepper.reset("client-closes-first")
        assert fresh.scenario == "client-closes-first" and fresh.step is None
        assert fresh.next_steps[:2] == ("server.listen()", "client.connect()")
        assert "server.accept()" not in fresh.next_steps, "nothing listens yet"


def test_reset_while_a_call_is_blocked_and_close_twice():
    stepper = Stepper("full-queue")
    for _ in range(3):
        stepper.step()
    assert stepper.snapshot().pending
    stepper.reset()
    stepper.close()
    stepper.close()
    with pytest.raises(RuntimeError, match="closed"):
        stepper.step()


def test_bad_input_is_answered_clearly():
    with pytest.raises(ValueError, match="unknown scenario 'nope'; choose one of basic"):
        Stepper("nope")
    with pytest.raises(ValueError, match=r"unknown scenario \['basic'\]; choose one of basic"):
        Stepper(["basic"])
    with Stepper() as stepper:
        with pytest.raises(ValueError, match="cannot be taken now; available: \\['server.listen"):
            stepper.step("server.accept()")
        for _ in SCENARIOS["basic"].steps:
            stepper.step()
        with pytest.raises(RuntimeError, match="finished: reset"):
            stepper.step()


def test_the_widget_clicked_from_the_kernel_side():
    pytest.importorskip("ipywidgets")
    from handshake_lab.show.stepper_widget import StepperWidget

    for scenario, expectations in EXPECTED.items():
        if _SKIP.get(scenario):
            continue
        with StepperWidget(scenario) as widget:
            images = [widget.timeline.value]
            for step, expected in zip(SCENARIOS[scenario].steps, expectations, strict=True):
                (button,) = wait_for(lambda: widget.offered, what=f"the {step.label} button")
                assert button.description == step.label
                button.click()
                shown = widget.snapshot
                for view in shown.sockets:
                    state = view.state.linux_name if view.state else "none"
                    assert f'data-lane="{view.lane}" data-state="{state}"' in widget.table.value
                images.append(widget.timeline.value)
                assert images[-1] != images[-2], f"the timeline did not change after {step.label}"
                check_step(widget.stepper, shown, expected, step.label)
        assert widget.stepper.closed


def test_the_packets_each_step_put_on_the_wire_where_capture_is_allowed():
    with Stepper("basic") as stepper:
        if stepper.packets_note:
            pytest.skip(stepper.packets_note)
        stepper.step()
        connected = stepper.step()
        syn, syn_ack, ack = connected.packets[:3]
        assert [syn.flags, syn_ack.flags, ack.flags] == ["SYN", "SYN+ACK", "ACK"]
        assert syn_ack.ack == (syn.seq + 1) % 2**32 and ack.ack == (syn_ack.seq + 1) % 2**32
        assert stepper.step().packets == (), "accept() puts nothing on the wire"


def test_without_capture_the_stepper_says_why_in_one_sentence():
    with Stepper("basic", capture_packets=False) as stepper:
        stepper.step()
        assert stepper.step().packets == ()
        assert stepper.packets_note == (
            "Packet capture is off for this stepper (capture_packets=False)."
        )


#: How deep the free-order walk goes in every scenario (every order of that many clicks).
FREE_ORDER_DEPTH = 3


def _free_orders(scenario: str, depth: int) -> list[tuple[str, ...]]:
    """Every order of up to `depth` clicks a learner can make with in_order=False."""
    orders, frontier = [], [()]
    while frontier:
        order = frontier.pop()
        with Stepper(scenario, in_order=False, capture_packets=False) as stepper:
            for label in order:
                stepper.step(label)
            possible = stepper.snapshot().next_steps if len(order) < depth else ()
        if not possible:
            orders.append(order)
        frontier += [(*order, label) for label in possible]
    return orders


def _settled_claims(stepper, snapshot):
    def agree():
        seen = {view.lane: view for view in stepper.snapshot().sockets}
        return all(
            lane in seen
            and (
                seen[lane].state is state
                or (state.linux_name == "CLOSE" and (seen[lane].gone or seen[lane].state is None))
            )
            for lane, state in snapshot.claims
        )

    return wait_for(agree, what=f"the states {snapshot.claims} claimed after {snapshot.step}")


@pytest.mark.parametrize("scenario", list(EXPECTED))
def test_in_free_order_every_explanation_claims_what_the_kernel_shows(scenario):
    """Every order of FREE_ORDER_DEPTH clicks: after each step, the state the explanation
    claims for each end is the kernel's once settled, and where capture is allowed the wire
    carried the segments the explanation says were sent, flag for flag, in order."""
    if _SKIP.get(scenario):
        pytest.skip("tcp_syncookies=2: there is no SYN-RECEIVED state to defer")
    for order in _free_orders(scenario, FREE_ORDER_DEPTH):
        with Stepper(scenario, in_order=False) as stepper:
            for label in order:
                snapshot = stepper.step(label)
                if snapshot.pending and snapshot.step in snapshot.pending:
                    continue  # blocked: it claims nothing yet
                _settled_claims(stepper, snapshot)
                if not stepper.packets_note:
                    on_wire = tuple(segment.flags for segment in snapshot.packets)
                    assert on_wire == snapshot.sent, (order, label, snapshot.explanation)


def test_each_step_counts_the_segments_each_held_socket_sent_and_received():
    """TCP_INFO's counters, on every Linux machine: no capture needed."""
    with Stepper("basic", capture_packets=False) as stepper:
        stepper.step()  # server.listen()
        connected = stepper.step()  # client.connect()
        client = connected.segments_of("client")
        assert (client.sent, client.received) == (2, 1), connected.as_text()  # SYN, ACK; SYN+ACK
        accepted = stepper.step()  # server.accept(): its counts began before the step
        assert accepted.segments_of("server 1") is None, accepted.segments
        assert (accepted.segments_of("client").sent, accepted.segments_of("client").received) == (
            0,
            0,
        )
        sent = stepper.step()  # client.send(b'hello')
        assert sent.segments_of("client").data_sent == 1, sent.segments
        assert sent.segments_of("server 1").data_received == 1, sent.segments


# -- no dead ends in free order, and what the widget says ------------------------------------


def test_a_refused_connect_is_offered_again_and_its_socket_takes_no_send_or_recv():
    with Stepper("basic", in_order=False, capture_packets=False) as stepper:
        stepper.step("client.connect()")
        refused = stepper.wait(KERNEL_TIMER_TIMEOUT)
        assert "ConnectionRefusedError" in refused.result, refused.result
        assert "client.connect()" in refused.next_steps, refused.next_steps
        on_the_client = [label for label in refused.next_steps if label.startswith("client.")]
        assert on_the_client == ["client.connect()"], refused.next_steps
        stepper.step("server.listen()")
        stepper.step("client.connect()")
        connected = stepper.wait(KERNEL_TIMER_TIMEOUT)
        assert connected.result.startswith("connected"), connected.as_text()
        assert connected.state_of("client 2") is TcpState.ESTABLISHED, connected.as_text()
        assert "client.send(b'hello')" in connected.next_steps, connected.next_steps


def test_a_blocked_accept_says_what_will_unblock_it_and_that_does():
    with Stepper("basic", in_order=False, capture_packets=False) as stepper:
        stepper.step("server.listen()")
        blocked = stepper.step("server.accept()")
        (waiting,) = blocked.waiting
        assert waiting.startswith("server.accept(): A client's connect()"), waiting
        stepper.step("client.connect()")
        done = stepper.wait(KERNEL_TIMER_TIMEOUT)
        assert not done.pending and done.step == "server.accept()", done.as_text()


@pytest.mark.skipif(_SKIP["defer-accept"], reason="tcp_syncookies=2: nothing is deferred")
def test_with_defer_accept_a_blocked_accept_names_the_send_that_unblocks_it():
    with Stepper("defer-accept", in_order=False, capture_packets=False) as stepper:
        stepper.step("server.listen()")
        (before,) = stepper.step("server.accept()").waiting
        assert "a client's connect() and then its send()" in before, before
        connected = stepper.step("client.connect()")
        (after,) = connected.waiting  # the ACK alone does not wake accept()
        assert connected.pending == ("server.accept()",) and "a client.send()" in after, after
        stepper.step("client.send(b'hello')")
        done = stepper.wait(KERNEL_TIMER_TIMEOUT)
        assert {view.lane: view.accepted for view in done.sockets}["server 1"], done.as_text()


def test_a_blocked_connect_says_an_accept_makes_room_and_that_does():
    with Stepper("full-queue", in_order=False, capture_packets=False) as stepper:
        for label in ("server.listen(0)", "client.connect()", "client2.connect()"):
            blocked = stepper.step(label)
        (waiting,) = blocked.waiting
        assert "once a server.accept() makes room in the accept queue" in waiting, waiting
        stepper.step("server.accept()")
        done = stepper.wait(KERNEL_TIMER_TIMEOUT)
        assert done.state_of("client 2") is TcpState.ESTABLISHED, done.as_text()


def test_the_queue_is_told_in_words_with_the_number_the_kernel_admits():
    """listen(0) admits one finished connection: the queue is full only when its length
    exceeds the backlog. The words give that number, and the kernel agrees: the next
    client's SYN is dropped."""
    with Stepper("full-queue", capture_packets=False) as stepper:
        stepper.step()  # server.listen(0)
        one = stepper.step()  # client.connect()
        queue = one.accept_queue
        assert one.queue_text() == (
            f"{queue.length} waiting to be accepted; listen(0) admits up to {queue.maximum + 1}"
        )
        assert queue.length == queue.maximum + 1 == 1, queue
        assert stepper.step().pending == ("client2.connect()",), "the next SYN was not dropped"
        assert "1/0" not in one.as_text() and "/128" not in stepper.reset("basic").as_text()


def test_one_line_per_kernel_action_naming_the_socket_that_acted():
    with Stepper("basic", capture_packets=False) as stepper:
        stepper.step()
        connected = stepper.step()
    lanes = {view.lane for view in connected.sockets}
    assert connected.explanation.splitlines() == [action.line for action in connected.actions]
    assert [action.who for action in connected.actions] == [
        "client",
        "server 1",
        "client",
        "server 1",
    ]
    assert {action.who for action in connected.actions} <= lanes
    assert connected.actions[-1].change == "SYN-RECEIVED → ESTABLISHED"


def test_the_widget_table_has_one_word_per_state_and_lanes_that_do_not_wrap():
    pytest.importorskip("ipywidgets")
    from handshake_lab.show.stepper_widget import socket_table_html

    with Stepper("listener-closes", capture_packets=False) as stepper:
        for _ in range(3):
            closed = stepper.step()
    table = socket_table_html(closed)
    assert "CLOSED (CLOSE)" not in table and ">CLOSED</span>" in table, table
    assert "<b>server 1</b>" in table and "white-space:nowrap" in table


def test_a_double_click_takes_one_step_and_no_button_is_ever_closed_while_shown():
    pytest.importorskip("ipywidgets")
    from handshake_lab.show.stepper_widget import StepperWidget

    with StepperWidget("basic") as widget:
        shown = list(widget.buttons.children)
        (listen,) = widget.offered
        listen.click()
        listen.click()  # the second click of a double click: its call is no longer offered
        assert widget.snapshot.taken == ("server.listen()",), widget.snapshot.taken
        assert list(widget.buttons.children) == shown, "the buttons were made again"
        assert all(button.comm is not None for button in shown), "a shown button was closed"
        assert [button.description for button in widget.offered] == ["client.connect()"]
    assert all(button.comm is None for button in shown), "close() closes every button"


@pytest.mark.parametrize("window", [3600.0, 0.0], ids=["within", "after"])
def test_free_order_is_a_checkbox_that_starts_the_scenario_again(monkeypatch, window):
    pytest.importorskip("ipywidgets")
    from handshake_lab.show import stepper_widget
    from handshake_lab.show.stepper_widget import StepperWidget

    # The second click on a refused connect() comes within the double-click window, or after
    # it. Set here, not left to the clock: wait() renders the timeline in between, which on
    # a slow machine can take longer than the real window.
    monkeypatch.setattr(stepper_widget, "DOUBLE_CLICK", window)
    with StepperWidget("basic") as widget:
        assert widget.free_order.description == "Free order" and not widget.free_order.value
        widget.click()  # server.listen()
        widget.free_order.value = True
        assert not widget.stepper.in_order and widget.snapshot.step is None, "not reset"
        offered = [button.description for button in widget.offered]
        assert offered[:2] == ["server.listen()", "client.connect()"], offered
        connect = widget.offered[1]
        connect.click()
        widget.wait(KERNEL_TIMER_TIMEOUT)
        connect.click()  # a double click on a call offered again: still one step
        assert widget.snapshot.step == "client.connect()"
        lanes = [view.lane for view in widget.snapshot.sockets]
        if window:
            assert "client 2" not in lanes, f"connect() was taken twice: {lanes}"
        else:  # a second click after the window is a new request: a second client
            assert "client 2" in lanes, f"the second connect() was dropped: {lanes}"
        assert "client.connect()" in [button.description for button in widget.offered]


def test_the_widget_timeline_cuts_the_learners_pauses_short(monkeypatch):
    from handshake_lab.show import stepper_widget
    from handshake_lab.show.stepper_widget import StepperWidget

    drawn = []

    def recording_png(recording, **kwargs):
        drawn.append(kwargs)
        return b""

    monkeypatch.setattr(stepper_widget, "timeline_png", recording_png)
    with StepperWidget("basic") as widget:
        widget.click()
    assert drawn and all(
        kwargs.get("compress_idle_over") == stepper_widget.IDLE_GAP for kwargs in drawn
    ), drawn


def test_a_click_right_after_choosing_a_new_scenario_is_taken():
    from handshake_lab.show.stepper_widget import StepperWidget

    with StepperWidget("basic", in_order=False) as widget:
        widget._on_button(widget._button("client.connect()"))  # refused: nothing listens yet
        widget.reset("client-closes-first")
        widget._on_button(widget._button("client.connect()"))  # at once, on the new scenario
        assert widget.snapshot.step == "client.connect()", widget.snapshot


def test_a_stepper_nobody_holds_stops_its_recorders_sampler():
    # A Stepper dropped without close() (a cell run again) must not sample forever.
    stepper = Stepper("basic", capture_packets=False)
    stepper.step()  # server.listen(): a listener the sampler watches
    (thread,) = stepper._run.recorder._background._threads
    del stepper
    gc.collect()
    thread.join(timeout=2)
    assert not thread.is_alive(), "the sampler thread kept running for a Stepper nobody holds"


@pytest.mark.parametrize("answer", [None, (TcpState.CLOSED, 0)], ids=["none", "CLOSE"])
def test_a_closing_connection_missed_by_one_lookup_is_still_followed(answer):
    # The server closes first: its side is an orphan, found by its addresses, and one lookup
    # can miss it while the kernel hands it over to its FIN-WAIT-2 entry.
    scenario = "server-closes-first"
    steps = list(zip(SCENARIOS[scenario].steps, EXPECTED[scenario], strict=True))
    closed = next(
        n for n, (_, expected) in enumerate(steps) if expected.get("server 1") == "FIN_WAIT2"
    )
    with Stepper(scenario, capture_packets=False) as stepper:
        for number, (step, expected) in enumerate(steps):
            check_step(stepper, stepper.step(), expected, step.label)
            if number == closed:
                missed = miss_one_lookup(stepper._run.recorder, answer)
                wait_for(missed.is_set, what="the sampler's next lookup")
