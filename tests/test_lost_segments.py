"""Lost handshake segments on real loopback sockets, checked against the TCP model.

Each loss runs live as root, in a private user + network namespace as an unprivileged user,
or is skipped with one sentence where neither is allowed (the recordings are checked on every
machine). Each waits for one real kernel timer: the first retransmission, about 1 s
(TCP_TIMEOUT_INIT in include/net/tcp.h), bounded by KERNEL_TIMER_TIMEOUT.
"""

from __future__ import annotations

import os

import pytest

from handshake_lab.capture import lost_segments_evidence as evidence
from handshake_lab.capture.evidence import Tier
from handshake_lab.capture.lost_segments import LossCapture, check_loss, timers_fired
from handshake_lab.capture.socket_filter import ACK, FIN, SYN, FlagsRule
from handshake_lab.capture.tiers import capture_handshake
from handshake_lab.model.states import TcpState

S = TcpState
LOSSES = ["syn", "syn-ack", "ack"]
#: (client, server) between the loss and the first retransmission.
HELD = {
    "syn": (S.SYN_SENT, S.LISTEN),
    "syn-ack": (S.SYN_SENT, S.SYN_RECEIVED),
    "ack": (S.ESTABLISHED, S.SYN_RECEIVED),
}
#: The first retransmission comes after the initial RTO, 1 s; a loaded CI machine may be late.
FIRST_RETRY_SECONDS = (0.9, 2.0)


def _matches_the_model(capture: LossCapture) -> None:
    """The capture's flags, in order, are the model's, with the same segment lost; each end's
    held and final states are the model's."""
    ladder = capture.model_ladder()
    wire = [(s.flags, i in capture.lost) for i, s in enumerate(capture.segments)]
    model = [(step.segment.flags, step.lost) for step in ladder]
    assert wire == model, f"kernel {wire}\nmodel  {model}\n{capture.ladder_text()}"
    lost_step = ladder[capture.lost[0]]
    assert capture.held_states() == (lost_step.client_state, lost_step.server_state), (
        capture.as_text()
    )
    assert (ladder[-1].client_state, ladder[-1].server_state) == (S.ESTABLISHED,) * 2
    for end in ("client", "server"):
        assert capture.states_of(end)[-1] is S.ESTABLISHED, capture.as_text()


@pytest.fixture(scope="module")
def live_or_namespace():
    """One run of each loss, here or in a namespace; skipped where neither is allowed."""
    tier, sentence = evidence.loss_tier()
    if tier is Tier.SHIPPED:
        pytest.skip(f"neither root nor a user namespace here: {sentence}")
    return {lose: capture_handshake(lose=lose) for lose in LOSSES}


@pytest.mark.kernel
@pytest.mark.parametrize("lose", LOSSES)
def test_each_loss_is_repaired_by_a_timer_as_the_model_says(live_or_namespace, lose):
    capture = live_or_namespace[lose]
    assert capture.tier is (Tier.LIVE if os.geteuid() == 0 else Tier.NAMESPACE), capture
    assert [capture.segments[i].flags for i in capture.lost] == [check_loss(lose).flags]
    _matches_the_model(capture)
    lost, first_after = capture.segments[capture.lost[0]], capture.segments[capture.lost[0] + 1]
    waited = first_after.time - lost.time
    low, high = FIRST_RETRY_SECONDS
    assert low < waited < high, f"the first segment after the loss came {waited:.3f} s later"
    assert capture.timers_fired(), capture.ladder_text()


@pytest.mark.kernel
def test_data_from_the_client_completes_a_handshake_whose_ack_was_lost():
    if evidence.loss_tier()[0] is Tier.SHIPPED:
        pytest.skip("neither root nor a user namespace here: only the recording can show it")
    capture = evidence.capture_with_loss("ack", client_sends=evidence.RECORDED_DATA)
    _matches_the_model(capture)
    assert [s.flags for s in capture.segments[3:]] == ["PSH+ACK", "ACK"], capture.ladder_text()
    assert capture.segments[-1].time - capture.segments[2].time < 0.5, capture.ladder_text()
    assert capture.timers_fired() == (), capture.ladder_text()


@pytest.mark.parametrize("lose", [*LOSSES, "ack then data"])
def test_the_recordings_match_the_model_and_say_where_they_come_from(lose):
    data = evidence.RECORDED_DATA if lose == "ack then data" else b""
    capture = evidence.load_recording(lose.split()[0], "live capture is off", client_sends=data)
    assert capture.tier is Tier.SHIPPED and capture.recorded_on, capture
    assert "recording made by this lab's own tool on" in capture.explanation
    assert "--record" in capture.explanation and "Linux" in capture.explanation
    _matches_the_model(capture)
    assert capture.held_states() == HELD[lose.split()[0]], capture.as_text()


def test_without_filters_or_namespaces_the_recording_is_returned(monkeypatch):
    def refused(lose, client_sends=b""):
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(evidence, "run_loss", refused)
    monkeypatch.setattr(evidence, "_run_in_namespace", lambda arguments: (None, "no namespaces"))
    capture = capture_handshake(lose="syn-ack")
    assert capture.tier is Tier.SHIPPED, capture
    assert capture.explanation.startswith("Socket filters and packet capture need root here")
    assert capture.timers_fired(), capture.ladder_text()


def test_the_tiers_argument_is_honoured_and_bad_input_is_refused():
    assert capture_handshake(lose="syn", tiers=["shipped"]).tier is Tier.SHIPPED
    with pytest.raises(ValueError, match="lose must be one of 'syn', 'syn-ack', 'ack'"):
        capture_handshake(lose="fin")
    with pytest.raises(ValueError, match="cannot be combined"):
        capture_handshake(slow_motion=True, lose="syn")
    with pytest.raises(ValueError, match="recorded only for lose='ack'"):
        evidence.capture_with_loss("syn", client_sends=b"x")


def test_which_timers_fired_is_read_from_the_segments_after_the_loss():
    recorded = evidence.load_recording("syn-ack")
    segments = recorded.segments
    flags = [s.flags for s in segments]
    assert timers_fired(segments, recorded.lost) == (
        ("server", "client") if flags[2] == "SYN+ACK" else ("client",)
    ), flags
    assert evidence.load_recording("syn").timers_fired() == ("client",)
    assert evidence.load_recording("ack").timers_fired() == ("server",)


@pytest.mark.parametrize(
    ("rule", "program_end"),
    [
        (FlagsRule.exactly(SYN), [(0x15, 0, 1, SYN), (0x06, 0, 0, 0), (0x06, 0, 0, 0xFFFFFFFF)]),
        (FlagsRule.exactly(ACK), [(0x15, 0, 1, ACK), (0x06, 0, 0, 0), (0x06, 0, 0, 0xFFFFFFFF)]),
        (
            FlagsRule(FIN, FIN, False),
            [(0x15, 0, 1, FIN), (0x06, 0, 0, 0xFFFFFFFF), (0x06, 0, 0, 0)],
        ),
    ],
)
def test_a_flags_rule_is_a_classic_bpf_program_on_the_flags_byte(rule, program_end):
    program = rule.program()
    assert program[0] == (0x30, 0, 0, 13)  # load the byte at offset 13 of the TCP header
    assert program[1][0] == 0x54 and program[2:] == program_end
    assert FlagsRule.exactly(SYN).mask & 0xC0 == 0  # ECE and CWR are ignored


def test_the_ladder_draws_each_lost_segment_as_a_cross_without_overlapping_text():
    pytest.importorskip("matplotlib")
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    from handshake_lab.show.ladder_plot import plot_ladder

    for lose in LOSSES:
        capture = evidence.load_recording(lose)
        artists = plot_ladder(capture.segments, lost=capture.lost)
        assert len(artists.lost_marks) == 2 * len(capture.lost)
        states = [label.get_text() for label in artists.state_labels[:2]]
        assert states[0] == "SYN-SENT", states
        figure = artists.axes.figure
        canvas = FigureCanvasAgg(figure)
        canvas.draw()
        renderer = canvas.get_renderer()
        boxes = [t.get_window_extent(renderer) for t in artists.axes.texts if t.get_text()]
        overlapping = [(a, b) for i, a in enumerate(boxes) for b in boxes[i + 1 :] if a.overlaps(b)]
        assert not overlapping, f"{lose}: {len(overlapping)} overlapping labels"


def test_the_doctors_sentence_names_the_tier_and_why(monkeypatch):
    tier, sentence = evidence.loss_tier()
    assert tier is (Tier.LIVE if os.geteuid() == 0 else tier) and sentence.startswith("Lost")

    def refused():
        raise PermissionError(1, "Operation not permitted")

    problem = "this machine does not allow a private user namespace (unshare: EPERM)"
    monkeypatch.setattr(evidence, "_may_filter_and_capture", refused)
    monkeypatch.setattr(evidence, "_run_in_namespace", lambda arguments: (None, problem))
    assert evidence.loss_tier() == (
        Tier.SHIPPED,
        f"Lost segments: shown from the lab's recordings, as {problem}.",
    )
