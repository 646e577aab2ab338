"""The notebook 03 exercise: a right prediction passes, wrong ones get specific feedback."""

import pytest

from handshake_lab.exercises.n03_step_through import check

pytestmark = pytest.mark.kernel

RIGHT = {"listener": "LISTEN", "client": "FIN-WAIT-2", "server 1": "CLOSE-WAIT"}


def test_the_right_table_passes():
    feedback = check(RIGHT)
    assert feedback.passed, str(feedback)
    assert "client: FIN-WAIT-2, as you said" in str(feedback)


def test_a_wrong_state_is_named_with_what_the_kernel_says():
    feedback = check({**RIGHT, "client": "CLOSED"})
    assert not feedback.passed
    assert "client: you said CLOSED, the kernel says FIN-WAIT-2" in str(feedback)


def test_missing_and_unknown_sockets_and_bad_names():
    assert "you left out ['server 1']" in str(check({"listener": "LISTEN", "client": "FIN_WAIT2"}))
    assert "no socket called 'server'" in str(check({**RIGHT, "server": "LISTEN"}))
    assert "not a TCP state" in str(check({**RIGHT, "client": "HALF_CLOSED"}))
    assert "write your prediction as a dict" in str(check([]))
    assert "is not a step of" in str(check(RIGHT, after="client.explode()"))


def test_fin_wait_1_is_answered_with_the_delayed_ack():
    feedback = check({**RIGHT, "client": "FIN-WAIT-1"})
    assert not feedback.passed
    assert "the kernel says FIN-WAIT-2 (FIN-WAIT-1 lasts only until" in str(feedback)


def test_other_scenarios_are_checked_against_their_settled_table():
    feedback = check(
        {"listener": "LISTEN", "client": "CLOSED", "server 1": "CLOSED"},
        scenario="unread-data",
        after="conn.close()",
    )
    assert feedback.passed, str(feedback)
