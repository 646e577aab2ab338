"""The Prediction widget's reveal: what was measured next to the prediction, and bad input."""

from __future__ import annotations

import pytest

from handshake_lab.show.prediction import Prediction


def test_reveal_says_what_was_measured_and_the_answer():
    prediction = Prediction("Which?", ["one", "two"])
    text = prediction.reveal("it was two", correct=1)
    assert text.splitlines() == [
        "You did not commit a prediction.",
        "Measured: it was two",
        "So the answer is: two",
    ]


@pytest.mark.parametrize("correct", [2, -1, "1", True, None])
def test_a_correct_index_outside_the_choices_says_what_to_pass(correct):
    with pytest.raises(ValueError, match="index of the right choice, 0 to 1"):
        Prediction("Which?", ["one", "two"]).reveal("x", correct=correct)
