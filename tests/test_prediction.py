"""The Prediction widget: no answer before a commitment, the verdict after, and bad input."""

from __future__ import annotations

import pytest

from handshake_lab.show import prediction as module
from handshake_lab.show.prediction import Prediction


def test_a_reveal_before_any_commitment_shows_nothing_of_the_answer():
    prediction = Prediction("Which?", ["one", "two"])
    text = prediction.reveal("it was two", correct=1)
    assert text == module.NOT_COMMITTED
    shown = prediction._status.value
    for secret in ("it was two", module.ANSWER, "two"):
        assert secret not in text and secret not in shown


def test_committing_after_the_experiment_shows_the_verdict_at_once():
    prediction = Prediction("Which?", ["one", "two"])
    prediction.reveal("it was two", correct=1)
    prediction.commit(0)
    shown = prediction._status.value
    assert "You predicted &#x27;one&#x27;" in shown and "it was two" in shown
    assert f"{module.ANSWER} two" in shown


@pytest.mark.parametrize(
    ("choice", "first_line"),
    [(1, module.MATCHES), (0, "You predicted 'one'. The measurement disagrees.")],
)
def test_reveal_after_a_commitment_says_what_was_measured_and_the_answer(choice, first_line):
    prediction = Prediction("Which?", ["one", "two"])
    prediction.commit(choice)
    assert "Now run the experiment" in prediction._status.value
    text = prediction.reveal("it was two", correct=1)
    assert text.splitlines() == [first_line, "Measured: it was two", f"{module.ANSWER} two"]
    assert "it was two" in prediction._status.value


def test_the_first_commitment_stands():
    prediction = Prediction("Which?", ["one", "two"])
    prediction.commit(0)
    prediction.commit(1)
    assert prediction.committed == 0


def test_the_commit_button_is_sized_to_its_label():
    button = Prediction("Which?", ["one", "two"])._commit
    assert button.layout.width == "auto"


@pytest.mark.parametrize("correct", [2, -1, "1", True, None])
def test_a_correct_index_outside_the_choices_says_what_to_pass(correct):
    with pytest.raises(ValueError, match="index of the right choice, 0 to 1"):
        Prediction("Which?", ["one", "two"]).reveal("x", correct=correct)


@pytest.mark.parametrize("index", [2, -1, "1", True, None])
def test_a_commitment_outside_the_choices_says_what_to_pass(index):
    with pytest.raises(ValueError, match="choose an index from 0 to 1"):
        Prediction("Which?", ["one", "two"]).commit(index)
