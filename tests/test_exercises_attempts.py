"""Hint ladders: more specific on each repeat of a mistake, per mistake, resettable."""

from __future__ import annotations

import pytest

from handshake_lab.exercises.attempts import Attempts


def test_each_repeat_climbs_one_rung_and_the_last_repeats():
    attempts = Attempts()
    ladder = ["vague", "closer", "specific"]
    got = [attempts.hint("m", ladder) for _ in range(4)]
    assert got == ["vague (hint 1 of 3)", "closer (hint 2 of 3)"] + ["specific (hint 3 of 3)"] * 2
    assert attempts.times("m") == 4


def test_mistakes_are_counted_apart_and_reset_starts_over():
    attempts = Attempts()
    attempts.hint("a", ["a1", "a2"])
    assert attempts.hint("b", ["b1", "b2"]) == "b1 (hint 1 of 2)"
    assert attempts.hint("a", ["a1", "a2"]) == "a2 (hint 2 of 2)"
    attempts.reset()
    assert attempts.hint("a", ["a1", "a2"]) == "a1 (hint 1 of 2)"
    assert attempts.hint("one", ["only"]) == "only"


@pytest.mark.parametrize("ladder", [[], "a string"])
def test_a_bad_ladder_is_refused(ladder):
    with pytest.raises(ValueError, match="list of one or more hints"):
        Attempts().hint("m", ladder)
