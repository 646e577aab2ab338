"""The checker of notebook 04's exercise, on real loopback sockets."""

from __future__ import annotations

import pytest

from handshake_lab.exercises import n04_backlog

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
