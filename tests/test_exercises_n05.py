"""The packets exercise's checker, on the capture shipped with the lab and on a real capture."""

from __future__ import annotations

import pytest

from handshake_lab.capture.shipped import load_shipped_capture
from handshake_lab.capture.tiers import capture_handshake
from handshake_lab.exercises.n05_packets import check

pytestmark = pytest.mark.kernel

SHIPPED = load_shipped_capture()


def solution(syn_seq, syn_ack_seq):
    return (syn_seq + 1) % 2**32, (syn_ack_seq + 1) % 2**32


def starter(syn_seq, syn_ack_seq):
    """The notebook's starter code, as stored."""
    syn_ack_ack = ...
    ack_ack = ...
    return syn_ack_ack, ack_ack


def fix_lines(feedback) -> list[str]:
    return [text for ok, text in feedback.lines if not ok]


def test_a_correct_prediction_passes_on_the_shipped_capture_and_on_a_real_capture():
    for capture in (SHIPPED, capture_handshake(every_segment=True)):
        feedback = check(solution, capture)
        assert feedback.passed, str(feedback)
        assert len(feedback.lines) == 3


def test_the_starter_code_is_told_to_replace_the_dots():
    feedback = check(starter, SHIPPED)
    assert fix_lines(feedback) == ["the SYN+ACK's ack is still ...: replace it with an expression"]
    assert str(feedback).startswith("Predicting the acks: not yet")


@pytest.mark.parametrize(
    ("prediction", "hint"),
    [
        (lambda j, k: (j, k), "a SYN counts as one byte: add 1"),
        (lambda j, k: (1, 1), "that is a relative number"),
        (lambda j, k: (k + 1, j + 1), "built on the SYN+ACK's seq"),
        (lambda j, k: (j + 1 + 2**32, k + 1), "keep the result below 2**32"),
    ],
)
def test_wrong_predictions_get_a_specific_hint(prediction, hint):
    feedback = check(prediction, SHIPPED)
    assert not feedback.passed
    assert hint in fix_lines(feedback)[0]


def test_forgetting_the_wrap_around_is_caught():
    feedback = check(lambda j, k: (j + 1, k + 1), SHIPPED)
    assert fix_lines(feedback) == [
        "for seq = 2**32 - 1 you predicted (4294967296, 4294967296), but sequence numbers are "
        "32 bits: the next one is 0; use (seq + 1) % 2**32"
    ]


@pytest.mark.parametrize(
    ("prediction", "problem"),
    [
        (lambda j, k: j + 1, "return two numbers"),
        (lambda j, k: ("1", "2"), "not a whole number"),
        (lambda j: (j, j), "predict_acks raised TypeError"),
    ],
)
def test_a_broken_function_is_explained(prediction, problem):
    (line,) = fix_lines(check(prediction, SHIPPED))
    assert problem in line


def test_something_not_callable_is_refused():
    assert fix_lines(check(42, SHIPPED)) == ["pass your function itself: check(predict_acks)"]
