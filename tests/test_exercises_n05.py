"""Notebook 05's exercise: predicting the close's numbers, checked against real captures."""

from __future__ import annotations

import re

import pytest

from handshake_lab.capture.shipped import load_shipped_capture
from handshake_lab.capture.tiers import capture_handshake
from handshake_lab.exercises.attempts import Attempts
from handshake_lab.exercises.n05_packets import check, wire_numbers

pytestmark = pytest.mark.kernel

SHIPPED = load_shipped_capture()
SPACE = 2**32


def solution(syn, syn_ack, sent):
    return (syn.seq + 1 + sent) % SPACE, (syn.seq + 2 + sent) % SPACE, (syn_ack.seq + 2) % SPACE


def starter(syn, syn_ack, sent):
    """The notebook's starter code, as stored."""
    fin_seq = ...
    fin_acked = ...
    last_ack = ...
    return fin_seq, fin_acked, last_ack


def fix_lines(feedback) -> list[str]:
    return [text for ok, text in feedback.lines if not ok]


def test_the_wire_numbers_are_read_from_the_segments_not_from_the_rules():
    wire = wire_numbers(SHIPPED.segments)
    client_fin = next(s for s in SHIPPED.segments if s.src == wire.syn.src and s.has("FIN"))
    server_fin = next(s for s in SHIPPED.segments if s.src == wire.syn.dst and s.has("FIN"))
    assert (wire.fin_seq, wire.fin_acked) == (client_fin.seq, server_fin.ack)
    assert wire.last_ack == SHIPPED.segments[-1].ack and wire.sent == 6


def test_a_correct_prediction_passes_on_the_shipped_capture_and_on_a_new_one():
    for capture in (SHIPPED, capture_handshake(every_segment=True)):
        feedback = check(solution, capture, Attempts())
        assert feedback.passed, str(feedback)
        assert capture.tier.value in feedback.title


def test_the_starter_code_is_told_to_replace_the_dots():
    feedback = check(starter, SHIPPED, Attempts())
    assert fix_lines(feedback) == [
        "the client's FIN's seq is still ...: replace it with an expression"
    ]


MISTAKES = [
    # (the learner's function, the field it gets wrong, words its first hint must contain)
    (lambda j, k, n: (j.seq + 1, j.seq + 2 + n, k.seq + 2), 0, "sent data before its FIN"),
    (lambda j, k, n: (j.seq + n, j.seq + 2 + n, k.seq + 2), 0, "one short"),
    (lambda j, k, n: (j.seq + 2 + n, j.seq + 2 + n, k.seq + 2), 0, "one too far"),
    (lambda j, k, n: (j.seq + 1 + n, j.seq + 1 + n, k.seq + 2), 1, "the FIN's own number"),
    (lambda j, k, n: (j.seq + 1 + n, j.seq + 1, k.seq + 2), 1, "the data as well"),
    (lambda j, k, n: (j.seq + 1 + n, j.seq + 2 + n, k.seq + 1), 2, "what number did that FIN"),
    (lambda j, k, n: (j.seq + 1 + n, j.seq + 2 + n, k.seq + 2 + n), 2, "only the client sent"),
    (lambda j, k, n: (j.seq + 1 + n, j.seq + 2 + n, j.seq + 2), 2, "other side's ISN"),
    (lambda j, k, n: (7, j.seq + 2 + n, k.seq + 2), 0, "relative number"),
    (lambda j, k, n: (j.seq + 1 + n + SPACE, j.seq + 2 + n, k.seq + 2), 0, "32-bit"),
]


@pytest.mark.parametrize(("prediction", "field", "hint"), MISTAKES)
def test_each_typical_mistake_gets_its_hint_and_only_its_field_fails(prediction, field, hint):
    feedback = check(prediction, SHIPPED, Attempts())
    assert [ok for ok, _ in feedback.lines] == [index != field for index in range(3)], str(feedback)
    assert hint in fix_lines(feedback)[0], str(feedback)


@pytest.mark.parametrize(("prediction", "field", "hint"), MISTAKES)
def test_no_hint_gives_the_answer_away(prediction, field, hint):
    attempts, wire = Attempts(), wire_numbers(SHIPPED.segments)
    answers = {str(number) for number in (wire.fin_seq, wire.fin_acked, wire.last_ack)}
    for _ in range(4):  # past the last rung of every ladder
        for line in fix_lines(check(prediction, SHIPPED, attempts)):
            assert not answers & set(re.findall(r"\d+", line)), line
            assert not re.search(r"(seq|sent)\s*[+%]", line), line


def test_repeating_a_mistake_gets_a_more_specific_hint_and_a_new_mistake_starts_again():
    attempts = Attempts()
    forgot_data = MISTAKES[0][0]
    first, second, third, fourth = (
        fix_lines(check(forgot_data, SHIPPED, attempts))[0] for _ in range(4)
    )
    assert "(hint 1 of 3)" in first and "(hint 2 of 3)" in second and "(hint 3 of 3)" in third
    assert len({first, second, third}) == 3 and fourth == third
    other = fix_lines(check(MISTAKES[3][0], SHIPPED, attempts))[0]
    assert "(hint 1 of 2)" in other


@pytest.mark.parametrize(
    ("prediction", "problem"),
    [
        (lambda j, k, n: j.seq + 1, "return three numbers"),
        (lambda j, k, n: ("1", 2, 3), "not a whole number"),
        (lambda j, k: (1, 2, 3), "predict raised TypeError"),
    ],
)
def test_a_broken_function_is_explained(prediction, problem):
    (line,) = fix_lines(check(prediction, SHIPPED, Attempts()))
    assert problem in line


def test_something_not_callable_is_refused():
    assert fix_lines(check(42, SHIPPED)) == ["pass your function itself: check(predict)"]
