"""Capturing a real handshake: each tier that this machine allows, and the shipped recording."""

from __future__ import annotations

import functools

import pytest

from handshake_lab.capture.tiers import (
    TIERS_ENVIRONMENT_VARIABLE,
    Tier,
    _conversation_finished,
    _live_unavailable,
    best_tier,
    capture_handshake,
    load_recording,
)
from handshake_lab.model.packets import Segment
from handshake_lab.model.states import TcpState
from handshake_lab.model.tcp_model import Connection, check_handshake


@functools.cache
def namespace_choice():
    return best_tier([Tier.NAMESPACE, Tier.RECORDING])


def namespace_unavailable() -> str | None:
    choice = namespace_choice()
    return None if choice.tier is Tier.NAMESPACE else choice.explanation


def assert_one_lab_conversation(capture):
    syn = capture.segments[0]
    assert syn.flags == "SYN"
    server_port = syn.dst_port
    assert all(server_port in (s.src_port, s.dst_port) for s in capture.segments)
    # Loopback shows each packet twice; the outgoing copy must have been dropped.
    assert len(set(capture.segments)) == len(capture.segments)
    assert [s.flags for s in capture.segments].count("SYN") == 1
    assert check_handshake(capture.segments) == []
    syn, syn_ack, ack = capture.segments[:3]
    assert syn_ack.ack == (syn.seq + 1) % 2**32
    assert ack.ack == (syn_ack.seq + 1) % 2**32


def test_shipped_recording_decodes_and_matches_the_model():
    for slow_motion in (False, True):
        capture = load_recording(slow_motion)
        assert capture.tier is Tier.RECORDING
        date, kernel = capture.recorded_on
        assert date in capture.explanation and kernel in capture.explanation
        assert_one_lab_conversation(capture)
    slow = load_recording(slow_motion=True)
    client_states = [state for _, side, state in slow.states if side == "client"]
    assert client_states == [TcpState.SYN_SENT, TcpState.ESTABLISHED]


def test_forcing_the_recording_tier_says_why(monkeypatch):
    capture = capture_handshake(tiers=["recording"])
    assert capture.tier is Tier.RECORDING
    assert "Live capture is off (the tiers= argument)" in capture.explanation
    monkeypatch.setenv(TIERS_ENVIRONMENT_VARIABLE, "recording")
    capture = capture_handshake()
    assert capture.tier is Tier.RECORDING
    assert f"{TIERS_ENVIRONMENT_VARIABLE}=recording" in capture.explanation
    assert best_tier().tier is Tier.RECORDING


def test_unknown_or_no_tier_is_refused():
    with pytest.raises(ValueError, match="unknown tier"):
        capture_handshake(tiers=["carrier-pigeon"])
    with pytest.raises(RuntimeError, match="recording tier is off"):
        capture_handshake(tiers=[])


def test_conversation_finished_waits_for_the_last_ack():
    connection = Connection(1, 2)
    connection.listen()
    connection.connect()
    connection.close("client")
    connection.close("server")
    wire = connection.wire
    assert _conversation_finished(wire)
    assert not _conversation_finished(wire[:-1])
    assert not _conversation_finished(
        [Segment(0, ("127.0.0.1", 1), ("127.0.0.1", 2), "FIN+ACK", 0, 0)]
    )


@pytest.mark.kernel
@pytest.mark.skipif(_live_unavailable() is not None, reason=str(_live_unavailable()))
def test_live_capture_of_a_real_handshake():
    capture = capture_handshake(tiers=["live"])
    assert capture.tier is Tier.LIVE
    assert "captured live" in capture.explanation
    assert_one_lab_conversation(capture)
    assert best_tier().tier is Tier.LIVE


@pytest.mark.kernel
def test_namespace_capture_of_a_real_handshake():
    reason = namespace_unavailable()
    if reason:
        pytest.skip(reason)
    capture = capture_handshake(tiers=["namespace"])
    assert capture.tier is Tier.NAMESPACE
    assert "private network namespace" in capture.explanation
    assert_one_lab_conversation(capture)


@pytest.mark.kernel
def test_namespace_slow_motion_shows_the_states_in_between():
    reason = namespace_unavailable()
    if reason:
        pytest.skip(reason)
    capture = capture_handshake(slow_motion=True, tiers=["namespace"])
    assert capture.tier is Tier.NAMESPACE
    assert_one_lab_conversation(capture)
    syn, syn_ack, ack = capture.segments[:3]
    assert syn_ack.time - syn.time > 0.2
    assert ack.time - syn_ack.time > 0.2
    client = [state for _, side, state in capture.states if side == "client"]
    server = [state for _, side, state in capture.states if side == "server"]
    assert client == [TcpState.SYN_SENT, TcpState.ESTABLISHED]
    assert server[-2:] == [TcpState.SYN_RECEIVED, TcpState.ESTABLISHED]
    # The client is ESTABLISHED while the server still waits for the ACK.
    client_established = next(
        t for t, side, s in capture.states if side == "client" and s.code == 1
    )
    server_established = next(
        t for t, side, s in capture.states if side == "server" and s.code == 1
    )
    assert client_established < ack.time <= server_established
