"""The checker of notebook 04's exercise and its evidence readers, on real loopback sockets."""

from __future__ import annotations

import time

import pytest

from handshake_lab.exercises import n04_backlog
from handshake_lab.loopback import LoopbackServer, close, connect, start_connect
from handshake_lab.states import TcpState
from handshake_lab.tcpinfo import socket_state

pytestmark = pytest.mark.kernel


def test_a_correct_solution_passes_every_backlog():
    feedback = n04_backlog.check(lambda backlog: backlog + 1)
    assert feedback.passed, str(feedback)
    assert len(feedback.lines) == len(n04_backlog.BACKLOGS)


def test_the_common_belief_gets_the_plus_one_hint():
    feedback = n04_backlog.check(lambda backlog: backlog)
    assert not feedback.passed
    assert all(not ok and "backlog + 1" in text for ok, text in feedback.lines), str(feedback)
    assert "not yet" in str(feedback)


def test_zero_and_too_many_get_their_own_hints():
    zero = n04_backlog.check(lambda backlog: 0 if backlog else -1)
    assert "without accept()" in str(zero), str(zero)
    many = n04_backlog.check(lambda backlog: 1000)
    assert "SYN-SENT" in str(many) and not many.passed, str(many)


def test_a_learner_exception_or_a_wrong_type_becomes_feedback():
    raised = n04_backlog.check(lambda backlog: 1 / 0)
    assert not raised.passed and "ZeroDivisionError" in str(raised)
    wrong_type = n04_backlog.check(lambda backlog: str(backlog + 1))
    assert not wrong_type.passed and "return a whole number" in str(wrong_type)
    not_callable = n04_backlog.check(3)
    assert not not_callable.passed and "pass your function" in str(not_callable)


@pytest.mark.parametrize("backlog", [0, 2])
def test_count_finished_handshakes_measures_backlog_plus_one(backlog):
    assert n04_backlog.count_finished_handshakes(backlog) == backlog + 1


def test_listen_counters_grow_when_a_full_queue_drops_a_syn():
    before = n04_backlog.listen_counters()
    if before is None:
        pytest.skip("this system has no ListenOverflows/ListenDrops in /proc/net/netstat")
    with LoopbackServer(backlog=0, auto_accept=False) as server:
        first = connect(server.address)
        waiting = start_connect(server.address)
        try:
            assert socket_state(waiting) is TcpState.SYN_SENT
        finally:
            close(waiting)
            close(first)
    after = n04_backlog.listen_counters()
    assert all(after[name] > before[name] for name in n04_backlog.LISTEN_COUNTERS)


def test_listen_counters_on_a_missing_or_odd_file(tmp_path):
    assert n04_backlog.listen_counters(str(tmp_path / "missing")) is None
    odd = tmp_path / "netstat"
    odd.write_text("TcpExt: SyncookiesSent\nTcpExt: 0\n", encoding="ascii")
    assert n04_backlog.listen_counters(str(odd)) is None
    good = tmp_path / "good"
    good.write_text("TcpExt: A ListenOverflows ListenDrops\nTcpExt: 1 2 3\n"
                    "IpExt: X\nIpExt: 9\n", encoding="ascii")
    assert n04_backlog.listen_counters(str(good)) == {"ListenOverflows": 2, "ListenDrops": 3}


def test_waiting_for_a_retransmission_is_bounded():
    with LoopbackServer(auto_accept=False) as server:
        client = connect(server.address)  # connected: its SYN will never be resent
        try:
            started = time.monotonic()
            with pytest.raises(TimeoutError):
                n04_backlog.seconds_until_syn_retransmit(client, started, timeout=0.05)
            assert time.monotonic() - started < 1.0
        finally:
            close(client)
