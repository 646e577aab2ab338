"""Predict, then observe: a small widget where the learner commits to an answer first.

`Prediction(question, choices)` shows the choices and a Commit button; once committed the
choice is locked. `reveal(observed, correct)` then sets what the learner predicted beside
what the kernel said. Rules: ipywidgets is imported only when a Prediction is made;
callbacks never use `with out:` (it leaks into cell output under nbval); the text form
is stable, so stored notebooks compare equal whether or not anyone clicked.
"""

from __future__ import annotations


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
        self._options = widgets.RadioButtons(
            options=self.choices, value=None, layout=widgets.Layout(width="auto")
        )
        self._commit = widgets.Button(description="Commit my prediction", button_style="info")
        self._status = widgets.HTML("<i>Choose an answer, then commit to it.</i>")
        self._commit.on_click(self._on_commit)
        self.widget = widgets.VBox(
            [
                widgets.HTML(f"<b>Predict:</b> {question}"),
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
        if not isinstance(index, int) or not 0 <= index < len(self.choices):
            raise ValueError(f"choose an index from 0 to {len(self.choices) - 1}")
        self.committed = index
        self._options.value = self.choices[index]
        self._options.disabled = self._commit.disabled = True
        self._status.value = "<b>Committed.</b> Now run the experiment below."

    def reveal(self, observed: str, correct: int) -> str:
        """What the learner predicted next to what was measured; returned and shown."""
        if (
            isinstance(correct, bool)
            or not isinstance(correct, int)
            or not (0 <= correct < len(self.choices))
        ):
            raise ValueError(
                f"correct= is the index of the right choice, 0 to {len(self.choices) - 1}, "
                f"got {correct!r}"
            )
        truth = self.choices[correct]
        if self.committed is None:
            verdict = "You did not commit a prediction."
        elif self.committed == correct:
            verdict = "Your prediction matches what was measured."
        else:
            verdict = f"You predicted: {self.choices[self.committed]!r}. The measurement disagrees."
        text = f"{verdict}\nMeasured: {observed}\nSo the answer is: {truth}"
        self._status.value = f"<b>{'✔' if self.committed == correct else '→'}</b> {truth}"
        return text

    def _repr_mimebundle_(self, **kwargs):
        bundle = self.widget._repr_mimebundle_(**kwargs)
        bundle["text/plain"] = f"Prediction: {self.question}"
        return bundle
