"""Predict, then observe: a small widget where the learner commits to an answer first.

`Prediction(question, choices)` shows the choices and a Commit button; once committed the
choice is locked. The experiment then calls `reveal(observed, correct)`, which holds the
observation. Rules:

- Nothing of the answer is shown before the learner commits: a reveal with nothing
  committed returns how to commit and neither the measurement nor the answer (a learner who
  pressed Run All has not predicted yet). Committing afterwards shows the verdict at once.
- The notebooks store every cell from a Prediction to its reveal without outputs (cell tag
  `prediction`, cleared by tools/notebooks.py), so an opened notebook shows no answer either.
- ipywidgets is imported only when a Prediction is made; callbacks never use `with out:` (it
  leaks into cell output under nbval); the text form is stable.
"""

from __future__ import annotations

import html

#: The first line of a reveal whose prediction matched (the browser test reads these).
MATCHES = "Your prediction matches what was measured."
#: The start of the first line of a reveal whose prediction did not match.
DISAGREES = "You predicted"
#: What a reveal says before anything was committed; it shows no answer.
NOT_COMMITTED = (
    "No prediction committed yet: pick an answer above and press "
    '"Commit my prediction"; what was measured and the answer then show there.'
)
#: The line of a reveal that states the answer.
ANSWER = "So the answer is:"


class Prediction:
    """A multiple-choice prediction the learner commits to before running the experiment."""

    def __init__(self, question: str, choices: list[str]) -> None:
        if not isinstance(question, str) or not question.strip():
            raise ValueError("a Prediction needs a question, e.g. 'When does connect() return?'")
        if not isinstance(choices, (list, tuple)) or len(choices) < 2:
            raise ValueError("a Prediction needs at least two choices in a list")
        import ipywidgets as widgets

        self.question, self.choices = question, list(choices)
        self.committed: int | None = None
        self.observation: tuple[str, int] | None = None  # (what was measured, right index)
        self._options = widgets.RadioButtons(
            options=self.choices, value=None, layout=widgets.Layout(width="auto")
        )
        # Sized to its text: a fixed-width button cuts its label ("Commit my predi…").
        self._commit = widgets.Button(
            description="Commit my prediction",
            button_style="info",
            layout=widgets.Layout(width="auto", min_width="max-content"),
        )
        self._status = widgets.HTML("<i>Choose an answer, then commit to it.</i>")
        self._commit.on_click(self._on_commit)
        self.widget = widgets.VBox(
            [
                widgets.HTML(f"<b>Predict:</b> {html.escape(question)}"),
                self._options,
                widgets.HBox([self._commit, self._status]),
            ]
        )
        self.widget.add_class("hl-prediction")

    def _on_commit(self, _button=None) -> None:
        if self._options.value is None:
            self._status.value = "<i>Pick one of the answers first.</i>"
            return
        self.commit(self.choices.index(self._options.value))

    def commit(self, index: int) -> None:
        """Lock in choice `index` (what the Commit button does)."""
        if isinstance(index, bool) or not isinstance(index, int):
            raise ValueError(f"choose an index from 0 to {len(self.choices) - 1}, got {index!r}")
        if not 0 <= index < len(self.choices):
            raise ValueError(f"choose an index from 0 to {len(self.choices) - 1}, got {index}")
        if self.committed is not None:
            return  # locked: the first commitment stands
        self.committed = index
        self._options.value = self.choices[index]
        self._options.disabled = self._commit.disabled = True
        if self.observation is None:
            self._status.value = "<b>Committed.</b> Now run the experiment below."
        else:
            self._show_verdict()

    def reveal(self, observed: str, correct: int) -> str:
        """Hold what was measured; return the verdict, or how to commit if nothing was."""
        if (
            isinstance(correct, bool)
            or not isinstance(correct, int)
            or not (0 <= correct < len(self.choices))
        ):
            raise ValueError(
                f"correct= is the index of the right choice, 0 to {len(self.choices) - 1}, "
                f"got {correct!r}"
            )
        self.observation = (str(observed), correct)
        if self.committed is None:
            return NOT_COMMITTED
        return self._show_verdict()

    def _verdict(self) -> str:
        observed, correct = self.observation
        if self.committed == correct:
            first = MATCHES
        else:
            first = f"{DISAGREES} {self.choices[self.committed]!r}. The measurement disagrees."
        return f"{first}\nMeasured: {observed}\n{ANSWER} {self.choices[correct]}"

    def _show_verdict(self) -> str:
        text = self._verdict()
        mark = "✔" if self.committed == self.observation[1] else "✘"
        lines = html.escape(text).replace("\n", "<br>")
        self._status.value = f"<b>{mark}</b> {lines}"
        return text

    def _repr_mimebundle_(self, **kwargs):
        bundle = self.widget._repr_mimebundle_(**kwargs)
        bundle["text/plain"] = f"Prediction: {self.question}"
        return bundle
