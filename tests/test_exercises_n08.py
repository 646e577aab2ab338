"""The lost-segments exercise's checker, on the lab's recording and on a real run."""

from __future__ import annotations

import pytest

from handshake_lab.capture.evidence import Tier
from handshake_lab.capture.lost_segments_evidence import (
    RECORDED_DATA,
    capture_with_loss,
    load_recording,
    loss_tier,
)
from handshake_lab.exercises.n08_lost_segments import check
from handshake_lab.model.states import TcpState

RECORDING = load_recording("ack", client_sends=RECORDED_DATA)


def solution():
    return ["PSH+ACK", "ACK"], TcpState.ESTABLISHED


def starter():
    """The notebook's starter code, as stored."""
    segments = ...
    server_state = ...
    return segments, server_state


def fix_lines(feedback) -> list[str]:
    return [text for ok, text in feedback.lines if not ok]


def test_the_solution_passes_on_the_recording():
    feedback = check(solution, RECORDING)
    assert feedback.passed, str(feedback)
    assert len(feedback.lines) == 2


@pytest.mark.kernel
def test_the_solution_passes_on_a_real_run():
    if loss_tier()[0] is Tier.SHIPPED:
        pytest.skip("neither root nor a user namespace here: the recording test covers it")
    run = capture_with_loss("ack", client_sends=RECORDED_DATA)
    assert run.tier is not Tier.SHIPPED, run.explanation
    assert check(solution, run).passed


@pytest.mark.parametrize(
    ("prediction", "hint"),
    [
        (starter, "replace the ... with your prediction"),
        (lambda: (["SYN+ACK", "ACK"], TcpState.ESTABLISHED), "the client's data leaves first"),
        (lambda: (["PSH+ACK"], TcpState.ESTABLISHED), "what does a receiver send back"),
        (lambda: (["ACK", "ACK"], TcpState.ESTABLISHED), "segment 1 after the lost ACK"),
        (lambda: (["PSH+ACK", "ACK"], TcpState.SYN_RECEIVED), "can a segment that carries data"),
        (lambda: (["PSH+ACK", "ACK"], "ESTABLISHED"), "must be a TcpState"),
        (lambda: (["DATA"], TcpState.ESTABLISHED), "'DATA' is not a TCP flag"),
        (lambda: ["PSH+ACK"], "return two things"),
        (lambda: 1 / 0, "raised ZeroDivisionError"),
    ],
)
def test_wrong_answers_get_a_hint_that_never_gives_the_kernels_answer(prediction, hint):
    feedback = check(prediction, RECORDING)
    assert not feedback.passed
    text = " ".join(fix_lines(feedback))
    assert hint in text, text
    assert "PSH+ACK, ACK" not in text and "['PSH+ACK', 'ACK']" not in text


def test_a_function_is_required():
    assert "pass your function itself" in fix_lines(check(["PSH+ACK"], RECORDING))[0]
