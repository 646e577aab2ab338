"""Capturing a real handshake: each tier this machine allows, and the shipped capture."""

from __future__ import annotations

import dataclasses
import functools
import socket
import subprocess
import sys
import threading

import pytest

from handshake_lab.capture.evidence import Capture, Tier
from handshake_lab.capture.experiment import _state_samples, conversation_finished
from handshake_lab.capture.shipped import (
    DATA_DIRECTORY,
    load_shipped_capture,
    save_shipped_capture,
)
from handshake_lab.capture.sniffer import LoopbackSniffer
from handshake_lab.capture.tiers import (
    TIERS_ENVIRONMENT_VARIABLE,
    _live_unavailable,
    best_tier,
    capture_handshake,
)
from handshake_lab.model.packets import Segment
from handshake_lab.model.replay import check_handshake
from handshake_lab.model.states import TcpState
from handshake_lab.model.tcp_model import Connection
from handshake_lab.net.server import LoopbackServer
from handshake_lab.record.events import Event, Recording
from handshake_lab.timeouts import LOOPBACK_TIMEOUT, poll_until


@functools.cache
def namespace_choice():
    return best_tier([Tier.NAMESPACE, Tier.SHIPPED])


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


def test_the_shipped_capture_decodes_and_matches_the_model():
    for slow_motion in (False, True):
        capture = load_shipped_capture(slow_motion)
        assert capture.tier is Tier.SHIPPED
        assert capture.slow_motion is slow_motion
        date, kernel = capture.recorded_on
        assert date in capture.explanation and kernel in capture.explanation
        assert "the capture shipped with the lab" in capture.explanation
        assert_one_lab_conversation(capture)
    slow = load_shipped_capture(slow_motion=True)
    client_states = [state for _, side, state in slow.states if side == "client"]
    assert client_states == [TcpState.SYN_SENT, TcpState.ESTABLISHED]


@pytest.mark.parametrize("stem", ["handshake", "handshake_slow"])
def test_the_shipped_sidecars_are_what_to_json_writes(stem):
    text = (DATA_DIRECTORY / f"{stem}.json").read_text()
    made = Capture.from_json(text, segments=[])
    assert made.tier in (Tier.LIVE, Tier.NAMESPACE)
    assert made.to_json(with_segments=False, indent=1) + "\n" == text


def test_a_capture_round_trips_through_json_with_its_frames():
    shipped = load_shipped_capture(slow_motion=True)
    made = dataclasses.replace(shipped, tier=Tier.NAMESPACE, recorded_on=None)
    again = Capture.from_json(made.to_json())
    assert again == made
    assert again.states[0][2] is TcpState.SYN_SENT


@pytest.mark.parametrize(
    "text",
    [
        "",
        "[]",
        '{"tier": "live"}',
        '{"tier": "carrier-pigeon"}',
        '{"tier": "live", "explanation": "", "states": [], "frames": [[0, "00"]]}',
    ],
)
def test_a_broken_capture_json_is_a_value_error(text):
    with pytest.raises(ValueError, match="capture's JSON"):
        Capture.from_json(text, segments=[])


def test_a_capture_json_without_frames_needs_its_segments():
    text = load_shipped_capture().to_json(with_segments=False)
    with pytest.raises(ValueError, match="pass its segments"):
        Capture.from_json(text)


def test_a_saved_capture_loads_back_as_shipped(tmp_path):
    shipped = load_shipped_capture(slow_motion=True)
    made = dataclasses.replace(
        shipped, tier=Tier.NAMESPACE, explanation="made here", recorded_on=None
    )
    pcap = save_shipped_capture(made, ("2030-01-02", "9.9.9-lab"), directory=tmp_path)
    assert pcap == tmp_path / "handshake_slow.pcap"
    loaded = load_shipped_capture(slow_motion=True, directory=tmp_path)
    assert loaded.tier is Tier.SHIPPED and loaded.recorded_on == ("2030-01-02", "9.9.9-lab")
    assert "namespace tier" in loaded.explanation
    assert loaded.segments == made.segments and loaded.states == made.states
    with pytest.raises(ValueError, match="save a new capture"):
        save_shipped_capture(loaded, ("2030-01-02", "9.9.9-lab"), directory=tmp_path)


def test_forcing_the_shipped_tier_says_why(monkeypatch):
    capture = capture_handshake(tiers=["shipped"])
    assert capture.tier is Tier.SHIPPED
    assert "Live capture is off (the tiers= argument)" in capture.explanation
    assert "the saved-SYN tier is off (the tiers= argument)" in capture.explanation
    monkeypatch.setenv(TIERS_ENVIRONMENT_VARIABLE, "shipped")
    capture = capture_handshake()
    assert capture.tier is Tier.SHIPPED
    assert f"{TIERS_ENVIRONMENT_VARIABLE}=shipped" in capture.explanation
    assert best_tier().tier is Tier.SHIPPED


def test_best_tier_and_capture_handshake_give_the_same_reasons():
    choice = best_tier(["shipped"], slow_motion=True)
    capture = capture_handshake(slow_motion=True, tiers=["shipped"])
    reasons = choice.explanation.split(", so ")[0]
    assert reasons.startswith("Slow motion never slows the machine's own loopback")
    assert "the namespace tier is off (the tiers= argument)" in reasons
    assert capture.explanation.split(", so ")[0] == reasons
    assert capture.slow_motion and capture.states


def test_unknown_or_no_tier_is_refused():
    with pytest.raises(ValueError, match="unknown tier"):
        capture_handshake(tiers=["carrier-pigeon"])
    with pytest.raises(ValueError, match="use some of: live, namespace, saved-syn, shipped"):
        best_tier(tiers=["recording"])
    with pytest.raises(RuntimeError, match="shipped tier is off too: allow at least 'shipped'"):
        capture_handshake(tiers=[])
    with pytest.raises(TypeError, match=r"tiers=\['shipped'\]"):
        capture_handshake(tiers="shipped")  # a string is not read letter by letter


def test_conversation_finished_waits_for_the_last_ack():
    connection = Connection(1, 2)
    connection.listen()
    connection.connect()
    connection.close("client")
    connection.close("server")
    wire = connection.wire
    assert conversation_finished(wire)
    assert not conversation_finished(wire[:-1])
    assert not conversation_finished(
        [Segment(0, ("127.0.0.1", 1), ("127.0.0.1", 2), "FIN+ACK", 0, 0)]
    )


def test_state_samples_keep_each_ends_changes_on_the_epoch_clock():
    events = [
        Event.of_state(10, "client", TcpState.SYN_SENT),
        Event.of_state(11, "server 1", TcpState.SYN_RECEIVED, accepted=False),
        Event.of_state(20, "client", TcpState.ESTABLISHED),
        Event.of_state(30, "server 1", TcpState.ESTABLISHED, accepted=False),
        Event.of_state(31, "server 1", TcpState.ESTABLISHED),  # accepted: not a new state
        Event(32, "call", "client", "send()", "client"),
    ]
    samples = _state_samples(Recording.from_events(events, 0, 40), "client", 5_000_000_000)
    assert samples == [
        (5.00000001, "client", TcpState.SYN_SENT),
        (5.000000011, "server", TcpState.SYN_RECEIVED),
        (5.00000002, "client", TcpState.ESTABLISHED),
        (5.00000003, "server", TcpState.ESTABLISHED),
    ]


def test_the_namespace_child_imports_the_experiment_not_the_tier_policy():
    code = (
        "import sys, handshake_lab.capture.namespace_child as child, "
        "handshake_lab.capture.experiment; "
        "print(sorted(m for m in sys.modules if m.startswith('handshake_lab.capture')))"
    )
    completed = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=LOOPBACK_TIMEOUT,
        check=True,
    )
    loaded = completed.stdout
    assert "handshake_lab.capture.experiment" in loaded
    assert "handshake_lab.capture.tiers" not in loaded
    assert "handshake_lab.capture.shipped" not in loaded


@pytest.mark.kernel
@pytest.mark.skipif(_live_unavailable() is not None, reason=str(_live_unavailable()))
def test_live_capture_of_a_real_handshake():
    capture = capture_handshake(tiers=["live"])
    assert capture.tier is Tier.LIVE
    assert "captured live" in capture.explanation
    assert_one_lab_conversation(capture)
    assert best_tier().tier is Tier.LIVE


@pytest.mark.kernel
@pytest.mark.skipif(_live_unavailable() is not None, reason=str(_live_unavailable()))
def test_the_sniffer_runs_one_lab_thread_and_stops_with_the_block():
    with LoopbackSniffer(port=9) as sniffer:
        names = [thread.name for thread in threading.enumerate()]
        assert "handshake-lab-loopback-sniffer" in names
    assert "handshake-lab-loopback-sniffer" not in [t.name for t in threading.enumerate()]
    assert sniffer.frames == [] and sniffer.segments == []


@pytest.mark.kernel
@pytest.mark.skipif(_live_unavailable() is not None, reason=str(_live_unavailable()))
@pytest.mark.parametrize("host", ["127.0.0.1", "::1"])
def test_the_kernel_queues_only_the_sniffed_ports_arriving_frames(host):
    """Other traffic on loopback (here a bulk transfer on another port) never reaches the
    sniffer's queue: it once filled it, and the stepper showed a step's segments as missing."""
    if host == "::1" and not socket.has_ipv6:
        pytest.skip("this Python has no IPv6")
    quiet_after_handshake = LoopbackServer(host=host, auto_accept=False)
    with LoopbackServer(host=host) as noise, quiet_after_handshake as server:
        port = server.address[1]
        with LoopbackSniffer(port=port) as sniffer:
            with socket.create_connection(noise.address, timeout=LOOPBACK_TIMEOUT) as busy:
                for _ in range(20):
                    busy.sendall(b"x" * 65536)
                    busy.recv(65536)
            with socket.create_connection(server.address, timeout=LOOPBACK_TIMEOUT):
                handshake = sniffer.wait_for(lambda found: len(found) >= 3, LOOPBACK_TIMEOUT)
                counts = sniffer.statistics()  # before the close sends anything more
                kept = len(sniffer.frames)
    assert handshake, sniffer.segments
    assert counts.dropped == 0, counts
    assert counts.queued == kept, f"the kernel queued {counts.queued} frames for {kept} of {port}"
    assert all(port in (s.src_port, s.dst_port) for s in sniffer.segments)


@pytest.mark.kernel
@pytest.mark.skipif(_live_unavailable() is not None, reason=str(_live_unavailable()))
def test_an_idle_sniffer_keeps_capturing_after_its_waits_time_out(monkeypatch):
    """A stepper can sit untouched for minutes: the sniffer's select() timing out is no reason
    to stop (it once did, after 20 s, and the stepper then showed 'nothing on the wire')."""
    import selectors

    from handshake_lab.capture import sniffer as sniffer_module

    idle_waits = []

    class CountingSelector(selectors.DefaultSelector):
        def select(self, timeout=None):
            ready = super().select(timeout)
            if not ready:
                idle_waits.append(timeout)
            return ready

    monkeypatch.setattr(sniffer_module, "CAPTURE_TIMEOUT", 0.01)
    monkeypatch.setattr(sniffer_module.selectors, "DefaultSelector", CountingSelector)
    with LoopbackServer(auto_accept=False) as server:
        with LoopbackSniffer(port=server.address[1]) as sniffer:
            assert poll_until(lambda: len(idle_waits) >= 3, timeout=LOOPBACK_TIMEOUT), idle_waits
            with socket.create_connection(server.address, timeout=LOOPBACK_TIMEOUT):
                saw_syn = sniffer.wait_for(
                    lambda segments: any(s.flags == "SYN" for s in segments), LOOPBACK_TIMEOUT
                )
    assert saw_syn, f"after {len(idle_waits)} idle waits the sniffer kept {sniffer.segments}"


@pytest.mark.kernel
def test_namespace_capture_of_a_real_handshake():
    reason = namespace_unavailable()
    if reason:
        pytest.skip(reason)
    capture = capture_handshake(tiers=["namespace"])
    assert capture.tier is Tier.NAMESPACE
    assert "private network namespace" in capture.explanation
    assert not capture.slow_motion and capture.states == []
    assert_one_lab_conversation(capture)


@pytest.mark.kernel
def test_namespace_slow_motion_shows_the_states_in_between():
    reason = namespace_unavailable()
    if reason:
        pytest.skip(reason)
    capture = capture_handshake(slow_motion=True, tiers=["namespace"])
    assert capture.tier is Tier.NAMESPACE
    assert capture.slow_motion
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
