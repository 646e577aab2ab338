"""The listen-queue experiments (SYN queue, ACK-time overflow), the refusal and the ss view.

The experiments run for real in a fresh child process in a private network namespace, whose
own tcp_syncookies and tcp_abort_on_overflow they set; where this machine forbids that, those
tests skip and only the shipped recording is checked (with the same assertions).
"""

from __future__ import annotations

import functools
import os
import shutil
import socket

import pytest

from handshake_lab.capture import listen_queue_evidence
from handshake_lab.capture.child_process import run_json_child
from handshake_lab.capture.listen_queue import (
    AckOverflowResult,
    SynQueueResult,
    WireEvent,
    tcpext_counters,
)
from handshake_lab.capture.listen_queue_evidence import (
    ListenQueueEvidence,
    listen_queue_experiments,
    load_recording,
)
from handshake_lab.capture.refusal import refuse_connection
from handshake_lab.kernel import listener_view
from handshake_lab.kernel.listener_view import listener_queue_view, parse_ss_listener
from handshake_lab.model.states import TcpState
from handshake_lab.net.clients import close, connect
from handshake_lab.net.server import LoopbackServer

pytestmark = pytest.mark.kernel


@functools.cache
def live_evidence() -> ListenQueueEvidence:
    return listen_queue_experiments()


def check_what_the_kernel_did(evidence: ListenQueueEvidence) -> None:
    """What every run of the experiments must show, live or recorded (Linux 6.x)."""
    with_cookies, without = evidence.syn_queue[1], evidence.syn_queue[0]
    held = with_cookies.backlog + 1  # the SYN queue is full when it holds more than backlog
    assert with_cookies.server_sides_syn_received == held, with_cookies
    assert with_cookies.server_sides_established == with_cookies.clients - held, with_cookies
    assert with_cookies.clients_established == with_cookies.clients, with_cookies
    assert with_cookies.counters["TCPReqQFullDoCookies"] == with_cookies.clients - held
    assert without.server_sides_syn_received == held, without
    assert without.server_sides_established == 0, without
    assert without.clients_syn_sent == without.clients - held, without
    assert without.counters["TCPReqQFullDrop"] == without.clients - held, without

    silent, abort = evidence.ack_overflow[0], evidence.ack_overflow[1]
    assert (silent.client_state, silent.server_side) == (
        TcpState.ESTABLISHED,
        TcpState.SYN_RECEIVED,
    ), silent
    assert silent.client_error is None and silent.client_unacknowledged >= 1, silent
    assert silent.count("server", "SYN+ACK") >= 2 and silent.count("server", "RST") == 0, silent
    assert (abort.client_state, abort.server_side) == (TcpState.CLOSED, None), abort
    assert abort.client_error == "ECONNRESET" and abort.count("server", "RST") == 1, abort
    for result in (silent, abort):  # a SYN meeting the full accept queue: dropped, no RST
        assert result.late_syn_state is TcpState.SYN_SENT and not result.late_syn_reset, result
        assert result.counters["ListenOverflows"] >= 1, result


def test_the_experiments_in_a_private_namespace():
    evidence = live_evidence()
    if not evidence.live:
        pytest.skip(f"no private network namespace here: {evidence.explanation}")
    assert "private network namespace" in evidence.explanation
    check_what_the_kernel_did(evidence)


def test_the_shipped_recording_is_labelled_and_shows_the_same():
    recording = listen_queue_experiments(live=False)
    assert not recording.live and recording.recorded_on and recording.made_with
    assert "is a recording" in recording.explanation, recording.explanation
    assert recording.made_with in recording.explanation
    check_what_the_kernel_did(recording)


def test_the_recording_says_why_the_live_one_could_not_run():
    recording = load_recording(why="this machine forbids user namespaces")
    assert recording.explanation.startswith("This machine forbids user namespaces, so this")


def test_a_failed_child_falls_back_to_the_recording(monkeypatch):
    monkeypatch.setattr(listen_queue_evidence, "run_child", lambda: (None, "no namespaces here"))
    evidence = listen_queue_experiments()
    assert not evidence.live and evidence.explanation.startswith("No namespaces here, so")


def test_results_go_to_dicts_and_back():
    syn = SynQueueResult(1, 2, 6, 3, 3, 6, 0, 3, {"TCPReqQFullDoCookies": 3})
    assert SynQueueResult.from_dict(syn.to_dict()) == syn
    ack = AckOverflowResult(
        abort_on_overflow=0,
        backlog=1,
        client_state=TcpState.ESTABLISHED,
        client_error=None,
        client_unacknowledged=1,
        server_side=TcpState.SYN_RECEIVED,
        wire=(WireEvent(0.0, "client", "SYN", 0), WireEvent(1.0, "server", "SYN+ACK", 0)),
        late_syn_state=TcpState.SYN_SENT,
        late_syn_reset=False,
        counters={"ListenOverflows": 2},
    )
    assert AckOverflowResult.from_dict(ack.to_dict()) == ack
    assert ack.count("server", "SYN+ACK") == 1 and ack.count("server", "RST") == 0


def test_tcpext_counters_reads_names_and_zero_for_missing(tmp_path):
    netstat = tmp_path / "netstat"
    netstat.write_text("TcpExt: ListenDrops TCPReqQFullDrop\nTcpExt: 5 7\nIpExt: A\nIpExt: 1\n")
    counters = tcpext_counters(str(netstat))
    assert counters["ListenDrops"] == 5 and counters["TCPReqQFullDrop"] == 7
    assert counters["TCPReqQFullDoCookies"] == 0


def test_a_refused_connect_shows_the_reset_where_capture_is_allowed():
    refusal = refuse_connection()
    assert refusal.error == "ConnectionRefusedError", refusal
    if refusal.why_not_captured:
        assert os.geteuid() != 0 and "error code is the evidence" in refusal.why_not_captured
        assert refusal.replies == ()
    else:
        assert [segment.flags for segment in refusal.replies] == ["RST+ACK"], refusal


@pytest.mark.parametrize("waiting", [0, 2])
def test_the_listener_view_agrees_three_ways(waiting):
    with LoopbackServer(backlog=2, auto_accept=False) as server:
        clients = [connect(server.address) for _ in range(waiting)]
        try:
            view = listener_queue_view(server.listener)
        finally:
            for client in clients:
                close(client)
    assert (view.tcp_info_length, view.tcp_info_maximum, view.proc_rx_queue) == (
        waiting,
        2,
        waiting,
    )
    if shutil.which("ss") is None:
        pytest.skip("ss (iproute2) is not installed here: only TCP_INFO and /proc were compared")
    assert (view.ss_recv_q, view.ss_send_q) == (waiting, 2), view


def test_without_ss_the_view_says_none(monkeypatch):
    monkeypatch.setattr(listener_view.shutil, "which", lambda name: None)
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(3)
        view = listener_queue_view(listener)
    assert (view.ss_output, view.ss_recv_q, view.ss_send_q) == (None, None, None)
    assert view.tcp_info_maximum == 3


def test_parse_ss_listener():
    text = (
        "State  Recv-Q Send-Q Local Address:Port  Peer Address:PortProcess\n"
        "LISTEN 2      5          127.0.0.1:41011      0.0.0.0:*\n"
        "LISTEN 0      4096           [::1]:631           [::]:*\n"
    )
    assert parse_ss_listener(text, 41011) == (2, 5)
    assert parse_ss_listener(text, 631) == (0, 4096)
    assert parse_ss_listener(text, 1) is None


def test_a_child_that_prints_no_report_becomes_a_failed_report():
    report = run_json_child("handshake_lab.no_such_module")
    assert report["ok"] is False and report["stage"] == "experiment", report
    assert "No module named" in report["error"], report
