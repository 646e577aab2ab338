"""What a Prediction shows only once the learner has committed, read from handshake_lab's own
Prediction, so that the browser tests follow its wording instead of copying it.

A Prediction is made here, outside any kernel, with made-up choices and observation; its
reveal() text and the text its widget shows are split into the fixed phrases around them.
- the verdicts are the phrases that differ between a right and a wrong commit (a phrase
  that depends on whether the learner was right is a verdict, whatever its wording);
- the answer phrases are every phrase of a committed reveal, plus the verdicts: none of them
  may be on the page before the learner commits.

Rules: no browser, no kernel (ipywidgets makes its widgets without a comm here); phrases of
fewer than three words ("Measured:") are left out, as they could be ordinary course text.
"""

from __future__ import annotations

import dataclasses
import functools
import html
import re

#: Made-up choices and observation: they never occur in course text, so what is left of a
#: text once they are cut out is the Prediction's own wording.
CHOICES = ("first-made-up-choice-q7", "second-made-up-choice-k2")
OBSERVED = "made-up-observation-z9"
#: A phrase must have this many words to count (shorter ones are ordinary words).
MIN_WORDS = 3
_EDGE = " \t'\"“”‘’.:;,!?()[]-→✔✘✗"


@dataclasses.dataclass(frozen=True)
class PredictionTexts:
    """The phrases the browser tests look for (see the module docstring)."""

    matches: frozenset[str]  # the verdict for a right commit
    disagrees: frozenset[str]  # the verdict for a wrong commit
    answer: frozenset[str]  # everything a committed reveal says, verdicts included

    @property
    def verdicts(self) -> frozenset[str]:
        return self.matches | self.disagrees


def phrases(text: str) -> set[str]:
    """The fixed phrases of `text`: markup, the made-up values and edge punctuation removed."""
    plain = html.unescape(re.sub(r"<[^>]+>", "\n", text))
    for value in (*CHOICES, OBSERVED):
        plain = plain.replace(value, "\n")
    found = set()
    for piece in re.split(r"\n|(?<=[.!?])\s+", plain):
        piece = re.sub(r"\s+", " ", piece).strip(_EDGE)
        if len(piece.split()) >= MIN_WORDS:
            found.add(piece)
    return found


def widget_text(widget) -> str:
    """The text an ipywidgets tree shows in its HTML and Label widgets (not the choices)."""
    import ipywidgets

    texts = []
    if isinstance(widget, (ipywidgets.HTML, ipywidgets.HTMLMath, ipywidgets.Label)):
        texts.append(widget.value)
    for child in getattr(widget, "children", ()):
        texts.append(widget_text(child))
    return "\n".join(texts)


def _committed(index: int, *, reveal_first: bool) -> tuple[str, str]:
    """(reveal text, widget text) of a Prediction committed to `index`; choice 0 is right."""
    from handshake_lab.show.prediction import Prediction

    prediction = Prediction("A made-up question for the browser tests?", list(CHOICES))
    try:
        if reveal_first:  # Run All first, commit afterwards: what the browser test does
            revealed = prediction.reveal(OBSERVED, 0)
            prediction.commit(index)
        else:
            prediction.commit(index)
            revealed = prediction.reveal(OBSERVED, 0)
        return revealed, widget_text(prediction.widget)
    finally:
        prediction.widget.close()


@functools.cache
def prediction_texts() -> PredictionTexts:
    """The verdict and answer phrases of the Prediction this checkout ships."""
    right = [_committed(0, reveal_first=first) for first in (False, True)]
    wrong = [_committed(1, reveal_first=first) for first in (False, True)]
    right_phrases = set().union(*(phrases(text) for pair in right for text in pair))
    wrong_phrases = set().union(*(phrases(text) for pair in wrong for text in pair))
    matches = frozenset(right_phrases - wrong_phrases)
    disagrees = frozenset(wrong_phrases - right_phrases)
    # What reveal() prints when the learner committed first (the uncommitted reveal is allowed
    # to say how to commit).
    revealed = phrases(right[0][0]) | phrases(wrong[0][0])
    return PredictionTexts(matches, disagrees, frozenset(revealed | matches | disagrees))


def found_in(text: str, wanted: frozenset[str]) -> list[str]:
    """The phrases of `wanted` that occur in `text` (whitespace-insensitive)."""
    flat = re.sub(r"\s+", " ", text)
    return sorted(phrase for phrase in wanted if phrase in flat)
