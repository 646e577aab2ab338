"""The packets exercise: predict the handshake's ack numbers.

``check(predict_acks)`` calls the learner's function with the seq numbers of a real capture and
compares its answer with the acks the kernels really sent; then it tries the top of the sequence
space, where the numbers wrap around (mod 2**32). Pure functions apart from the capture.
"""

from __future__ import annotations

from ..model.sequence_numbers import handshake_of
from ..model.tcp_model import SEQUENCE_SPACE
from .feedback import Feedback

__all__ = ["check"]

#: The highest sequence number: one more wraps around to 0.
TOP_OF_SEQUENCE_SPACE = SEQUENCE_SPACE - 1


# -- the exercise -------------------------------------------------------------------------
def _call(predict_acks, syn_seq: int, syn_ack_seq: int) -> tuple[object, str]:
    """(the learner's two numbers, '') or (None, what to fix)."""
    try:
        answer = predict_acks(syn_seq, syn_ack_seq)
    except Exception as error:  # the learner's bug, turned into a sentence
        return None, (
            f"predict_acks raised {type(error).__name__}: {error}; it gets two ints "
            "(syn_seq, syn_ack_seq) and returns two ints"
        )
    if not isinstance(answer, (tuple, list)) or len(answer) != 2:
        return None, (
            f"predict_acks returned {answer!r}; return two numbers: "
            "(the SYN+ACK's ack, the final ACK's ack)"
        )
    for name, value in zip(("SYN+ACK's ack", "final ACK's ack"), answer, strict=True):
        if value is Ellipsis:
            return None, f"the {name} is still ...: replace it with an expression"
        if isinstance(value, bool) or not isinstance(value, int):
            return None, (f"the {name} is {value!r}, not a whole number: sequence numbers are ints")
    return tuple(answer), ""


def _hint(predicted: int, syn_seq: int, syn_ack_seq: int, own: str, other: str) -> str:
    """Why one predicted ack is wrong, for the ack that acknowledges `own`'s SYN."""
    own_seq = syn_seq if own == "SYN" else syn_ack_seq
    if predicted == own_seq:
        return (
            f"that is the {own}'s own seq; an ack names the next byte expected, and a SYN "
            "counts as one byte: add 1"
        )
    if predicted in (0, 1):
        return (
            "that is a relative number (as Wireshark shows by default); the wire carries "
            f"absolute numbers: start from the {own}'s seq"
        )
    if predicted in (syn_seq, syn_ack_seq, syn_seq + 1, syn_ack_seq + 1):
        return f"that is built on the {other}'s seq; this ack answers the {own}: use its seq"
    if predicted >= SEQUENCE_SPACE:
        return "sequence numbers are 32 bits: keep the result below 2**32 with % 2**32"
    return f"the {own}'s seq, plus the one byte a SYN counts for, gives it"


def check(predict_acks, capture=None) -> Feedback:
    """Compare ``predict_acks(syn_seq, syn_ack_seq) -> (syn_ack_ack, ack_ack)`` with a capture.

    ``capture`` defaults to a new real handshake (``capture_handshake``'s best tier that
    shows every segment).
    """
    feedback = Feedback("Predicting the acks")
    if not callable(predict_acks):
        feedback.expect(False, "", "pass your function itself: check(predict_acks)")
        return feedback
    if capture is None:
        from ..capture.tiers import capture_handshake

        capture = capture_handshake(every_segment=True)
    syn, syn_ack, ack = handshake_of(capture.segments)
    answer, problem = _call(predict_acks, syn.seq, syn_ack.seq)
    if answer is None:
        feedback.expect(False, "", problem)
        return feedback
    for predicted, real, own, other, which in (
        (answer[0], syn_ack.ack, "SYN", "SYN+ACK", "SYN+ACK's ack"),
        (answer[1], ack.ack, "SYN+ACK", "SYN", "final ACK's ack"),
    ):
        feedback.expect(
            predicted == real,
            f"the {which} matches the one the kernel sent in the captured handshake",
            f"the {which} differs from the captured one: "
            + _hint(predicted, syn.seq, syn_ack.seq, own, other),
        )
    if not feedback.passed:
        return feedback
    top = TOP_OF_SEQUENCE_SPACE
    answer, problem = _call(predict_acks, top, top)
    if answer is None:
        feedback.expect(False, "", problem)
        return feedback
    feedback.expect(
        tuple(answer) == (0, 0),
        "at the top of the sequence space (seq = 2**32 - 1) your acks wrap around to 0",
        f"for seq = 2**32 - 1 you predicted {tuple(answer)}, but sequence numbers are 32 bits: "
        "the next one is 0; use (seq + 1) % 2**32",
    )
    return feedback
