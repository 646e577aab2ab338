"""Hints that get more specific with each failed try, and never print the solution.

An exercise checker keeps one `Attempts` at module level, so it remembers a learner's tries
between runs of the exercise cell. Each kind of mistake has a ladder of hints, from a nudge
to a pointer at the exact idea to look up; `hint(mistake, ladder)` gives the rung for this
try of that mistake. Rules: pure (no sockets, no clock); the last rung repeats; a ladder
names ideas, calls and documentation to read, never the code or the number that passes.
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["Attempts"]


class Attempts:
    """How often each mistake has been made so far, and the hint for the next one."""

    def __init__(self) -> None:
        self._made: dict[str, int] = {}

    def hint(self, mistake: str, ladder: Sequence[str]) -> str:
        """The next hint for `mistake`: rung 1 the first time, then more specific ones."""
        if isinstance(ladder, str) or not ladder:
            raise ValueError("a hint ladder is a list of one or more hints, vaguest first")
        made = self._made.get(mistake, 0)
        self._made[mistake] = made + 1
        rung = min(made, len(ladder) - 1)
        if len(ladder) == 1:
            return ladder[0]
        return f"{ladder[rung]} (hint {rung + 1} of {len(ladder)})"

    def times(self, mistake: str) -> int:
        """How many times `mistake` has been made."""
        return self._made.get(mistake, 0)

    def reset(self) -> None:
        """Forget every try: the next hint of each mistake is its first."""
        self._made.clear()
