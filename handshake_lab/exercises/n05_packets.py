"""Notebook 05's exercise: from a real handshake, predict the numbers of the close that follows.

The lab's conversation (``capture_handshake``) is: handshake, the client sends a few bytes,
the client closes, the server closes. The learner writes ``predict(syn, syn_ack, sent)``:
given the captured SYN and SYN+ACK (``Segment``s) and how many data bytes the client sent,
it returns three numbers the kernels put on the wire later: the sequence number of the
client's FIN, the ack in the server's FIN, and the ack in the client's last segment. `check`
captures a new conversation (the best tier that shows every segment; fresh ISNs each time
except on the shipped tier) and compares each number with the segment really captured.
Rules: a failing line never shows the wire's number (it would give the answer away); its
hint comes from ``attempts.Attempts`` and gets more specific each time the mistake repeats.
"""

from __future__ import annotations

from typing import NamedTuple

from ..model.packets import Segment
from ..model.sequence_numbers import handshake_of
from ..model.tcp_model import SEQUENCE_SPACE
from .attempts import Attempts
from .feedback import Feedback

__all__ = ["ATTEMPTS", "WireNumbers", "check", "wire_numbers"]

#: The learner's tries so far, kept between runs of the exercise cell.
ATTEMPTS = Attempts()

#: Within this distance a guess counts as "built on" a number (the conversation is short).
_NEAR = 1000

_NAMES = (
    "the client's FIN's seq",
    "the ack in the server's FIN",
    "the ack in the client's last ACK",
)


class WireNumbers(NamedTuple):
    """What one captured conversation carried, read from its segments."""

    syn: Segment
    syn_ack: Segment
    sent: int  # data bytes the client sent before its FIN
    fin_seq: int  # the sequence number the client's FIN took
    fin_acked: int  # the ack in the server's FIN
    last_ack: int  # the ack in the client's last segment


def wire_numbers(segments: list[Segment]) -> WireNumbers:
    """The handshake, the client's data and the three numbers to predict, from a capture."""
    syn, syn_ack, _ = handshake_of(segments)
    client_side = [s for s in segments if s.src == syn.src]
    server_side = [s for s in segments if s.src == syn.dst]
    client_fin = next((s for s in client_side if s.has("FIN")), None)
    server_fin = next((s for s in server_side if s.has("FIN")), None)
    if client_fin is None or server_fin is None:
        raise ValueError(
            "this capture does not hold both FINs: capture the whole conversation "
            "with capture_handshake(every_segment=True)"
        )
    before_fin = client_side[: client_side.index(client_fin) + 1]
    return WireNumbers(
        syn,
        syn_ack,
        sum(s.payload_len for s in before_fin),
        (client_fin.seq + client_fin.payload_len) % SEQUENCE_SPACE,
        server_fin.ack,
        client_side[-1].ack,
    )


def _call(predict, syn: Segment, syn_ack: Segment, sent: int) -> tuple[tuple | None, str]:
    """(the learner's three numbers, '') or (None, what to fix)."""
    try:
        answer = predict(syn, syn_ack, sent)
    except Exception as error:  # the learner's bug, turned into a sentence
        return None, (
            f"predict raised {type(error).__name__}: {error}; it gets the SYN and the "
            "SYN+ACK (use their .seq and .ack) and sent, an int, and returns three ints"
        )
    if not isinstance(answer, (tuple, list)) or len(answer) != 3:
        return (
            None,
            f"predict returned {answer!r}; return three numbers: (fin_seq, fin_acked, last_ack)",
        )
    for name, value in zip(_NAMES, answer, strict=True):
        if value is Ellipsis:
            return None, f"{name} is still ...: replace it with an expression"
        if isinstance(value, bool) or not isinstance(value, int):
            return None, f"{name} is {value!r}, not a whole number: sequence numbers are ints"
    return tuple(answer), ""


def _distance(a: int, b: int) -> int:
    """How far apart two sequence numbers are, around the 32-bit circle."""
    gap = (a - b) % SEQUENCE_SPACE
    return min(gap, SEQUENCE_SPACE - gap)


def _mistake(field: int, predicted: int, wire: WireNumbers) -> tuple[str, list[str]]:
    """Which mistake `predicted` looks like, for field 0, 1 or 2, and its ladder of hints."""
    if predicted >= SEQUENCE_SPACE or predicted < 0:
        return "outside-32-bits", [
            "sequence numbers are 32-bit: yours is outside 0 .. 2**32 - 1",
            "after 2**32 - 1 the numbers start again at 0: Python's % operator does that",
        ]
    if predicted < _NEAR <= min(wire.syn.seq, wire.syn_ack.seq):
        return "relative", [
            "that looks like a relative number, the kind Wireshark shows; the wire carries "
            "absolute ones",
            "start from the absolute numbers the handshake carried: syn.seq or syn_ack.seq",
        ]
    own, other = (wire.syn, wire.syn_ack) if field < 2 else (wire.syn_ack, wire.syn)
    owner = "client's" if field < 2 else "server's"
    if _distance(predicted, other.seq) < _NEAR <= _distance(own.seq, other.seq):
        return f"wrong-side-{field}", [
            f"this number counts the {owner} bytes, but yours is built on the other side's ISN",
            f"each side numbers its own bytes from its own ISN: the {owner} ISN is the seq of "
            f"{'the SYN' if field < 2 else 'the SYN+ACK'}",
        ]
    steps = (predicted - own.seq) % SEQUENCE_SPACE  # how far the guess went from the ISN
    counted = {0: 1 + wire.sent, 1: 2 + wire.sent, 2: 2}[field]  # what the kernel counted
    if steps == counted - 1 and field == 0:
        return "forgot-the-syn", [
            "one short: count again which sequence numbers were used before the FIN",
            "the SYN itself took one sequence number, before any data",
        ]
    if field == 0 and steps == 1:
        return "forgot-the-data", [
            "the client sent data before its FIN: did your number move on for it?",
            "every data byte takes one sequence number, and the FIN comes after the last one",
            "read the ladder's relative numbers: the SYN is 0, the first data byte is 1; "
            "which relative number comes after `sent` bytes?",
        ]
    if field == 0 and steps == counted + 1:
        return "one-past-the-fin", [
            "one too far: a segment's seq is the number of its own first byte (here: of its "
            "FIN), not the number after it",
        ]
    if field == 1 and steps == counted - 1:
        return "fin-takes-a-number", [
            "an ack names the next number expected: is that the FIN's own number?",
            "a FIN takes one sequence number, just as a SYN does, so acknowledging it moves "
            "the ack past it",
        ]
    if field == 1 and steps in (1, 2):
        return "fin-ack-without-data", [
            "the server's FIN acknowledges everything the client sent: the data as well",
            "count the client's numbers up to its FIN: the SYN, the data bytes, the FIN",
        ]
    if field == 2 and steps == counted - 1:
        return "server-fin-takes-a-number", [
            "the client's last ACK answers the server's FIN: what number did that FIN take?",
            "the server's FIN takes a sequence number too, the one after the SYN+ACK's",
        ]
    if field == 2 and counted < steps <= counted + wire.sent + 1:
        return "server-sent-no-data", [
            "in this conversation only the client sent data: the server's numbers did not "
            "move on for the client's bytes",
            "the server used two sequence numbers in all: one for its SYN+ACK, one for its FIN",
        ]
    return f"other-{field}", [
        "read the ladder again: which numbers has this side used so far?",
        "an ack is the next sequence number expected; a SYN and a FIN each take one number, "
        "and each data byte one",
        "work it out in relative numbers first (the SYN is 0), then add the ISN",
    ]


def check(predict, capture=None, attempts: Attempts | None = None) -> Feedback:
    """Compare ``predict(syn, syn_ack, sent) -> (fin_seq, fin_acked, last_ack)`` with a capture.

    ``capture`` defaults to a new real conversation (``capture_handshake``'s best tier that
    shows every segment); ``attempts`` to the module's ``ATTEMPTS``.
    """
    attempts = ATTEMPTS if attempts is None else attempts
    if not callable(predict):
        feedback = Feedback("Predicting the close's numbers")
        feedback.expect(False, "", "pass your function itself: check(predict)")
        return feedback
    if capture is None:
        from ..capture.tiers import capture_handshake

        capture = capture_handshake(every_segment=True)
    feedback = Feedback(f"Predicting the close's numbers ({capture.tier.value} capture)")
    wire = wire_numbers(capture.segments)
    answer, problem = _call(predict, wire.syn, wire.syn_ack, wire.sent)
    if answer is None:
        feedback.expect(False, "", problem)
        return feedback
    real = (wire.fin_seq, wire.fin_acked, wire.last_ack)
    hints: dict[str, str] = {}  # one mistake made in two fields counts as one try
    for field, (name, predicted, on_wire) in enumerate(zip(_NAMES, answer, real, strict=True)):
        if predicted == on_wire:
            feedback.expect(True, f"{name}: {on_wire} on the wire, as you predicted", "")
        else:
            mistake, ladder = _mistake(field, predicted, wire)
            if mistake not in hints:
                hints[mistake] = attempts.hint(mistake, ladder)
            feedback.expect(False, "", f"{name} differs from the wire: {hints[mistake]}")
    return feedback
