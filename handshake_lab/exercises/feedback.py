"""What an exercise check returns: passed or not, and one line per thing checked."""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass
class Feedback:
    """The result of checking a learner's code; prints as a short report."""

    title: str
    lines: list[tuple[bool, str]] = dataclasses.field(default_factory=list)

    def expect(self, condition: bool, ok: str, fix: str) -> bool:
        """Record one check: `ok` if it holds, otherwise `fix` (what to change)."""
        self.lines.append((bool(condition), ok if condition else fix))
        return bool(condition)

    @property
    def passed(self) -> bool:
        return bool(self.lines) and all(ok for ok, _ in self.lines)

    def __str__(self) -> str:
        head = f"{self.title}: {'all checks passed' if self.passed else 'not yet'}"
        return "\n".join([head] + [f"  {'✔' if ok else '✘'} {text}" for ok, text in self.lines])

    def __repr__(self) -> str:
        return str(self)

    def _repr_pretty_(self, printer, cycle) -> None:
        printer.text(str(self))
