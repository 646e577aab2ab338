"""Notebook 08 (lost segments): its exercise checker.

The exercise: the client's final ACK is lost, and the client sends b"hello\\n" as soon as
connect() returns. The learner's ``predict_after_lost_ack()`` returns the flags of every
segment that follows the lost ACK, in order, and the state of the server's end once they have
passed. ``check`` runs that experiment on real sockets (live, in a private namespace, or the
lab's recording of it where neither is allowed) and compares. Rules: the feedback says what
to change, never the kernel's answer; the learner's exceptions become feedback.
"""

from __future__ import annotations

from collections.abc import Callable

from ..capture.lost_segments import LossCapture
from ..model.packets import flags_to_bits
from ..model.states import TcpState
from .feedback import Feedback

__all__ = ["check"]

TITLE = "Exercise 08: a lost ACK, then the client sends data"


def _run_experiment() -> LossCapture:
    from ..capture.lost_segments_evidence import RECORDED_DATA, capture_with_loss

    return capture_with_loss("ack", client_sends=RECORDED_DATA)


def _read_answer(predict: Callable) -> tuple[list[str], TcpState] | str:
    """The learner's (flags, state), or a sentence saying what to fix."""
    try:
        answer = predict()
    except Exception as error:  # the learner's bug becomes feedback
        return f"predict_after_lost_ack() raised {type(error).__name__}: {error}"
    if not isinstance(answer, (tuple, list)) or len(answer) != 2:
        return "return two things: (the list of flags, the server's TcpState)"
    flags, state = answer
    if flags is Ellipsis or state is Ellipsis:
        return "replace the ... with your prediction"
    if not isinstance(flags, (list, tuple)) or not all(isinstance(f, str) for f in flags):
        return f"the segments must be a list of strings such as 'SYN+ACK', not {flags!r}"
    for name in flags:
        try:
            flags_to_bits(name)
        except ValueError as error:
            return str(error)
    if not isinstance(state, TcpState):
        return f"the state must be a TcpState, such as TcpState.SYN_RECEIVED, not {state!r}"
    return list(flags), state


def _hint(predicted: list[str], real: list[str]) -> str:
    """Where the prediction first leaves the kernel's segments, as a question."""
    if predicted[:1] == ["SYN+ACK"]:
        return (
            "the SYN+ACK comes again only when the server's timer fires, about 1 s later; "
            "the client's data leaves first: what does that segment carry besides the data?"
        )
    for index, (mine, theirs) in enumerate(zip(predicted, real, strict=False)):
        if mine != theirs:
            return f"segment {index + 1} after the lost ACK is not what the kernel sent"
    if len(predicted) < len(real):
        return "the kernel sent more than that: what does a receiver send back for data?"
    return "the kernel sent fewer segments than that"


def check(predict_after_lost_ack: Callable, capture: LossCapture | None = None) -> Feedback:
    """Compare the learner's prediction with a real run (``capture``: one made already)."""
    feedback = Feedback(TITLE)
    if not callable(predict_after_lost_ack):
        feedback.expect(False, "", "pass your function itself: check(predict_after_lost_ack)")
        return feedback
    answer = _read_answer(predict_after_lost_ack)
    if isinstance(answer, str):
        feedback.expect(False, "", answer)
        return feedback
    predicted, predicted_state = answer
    run = capture if capture is not None else _run_experiment()
    real = [s.flags for s in run.segments[max(run.lost) + 1 :]]
    feedback.expect(
        predicted == real,
        f"the kernel sent these {len(real)} segments after the lost ACK, in this order",
        _hint(predicted, real),
    )
    server_state = run.states_of("server")[-1]
    feedback.expect(
        predicted_state is server_state,
        f"the server's end was {server_state.rfc_name} once they had passed",
        "the kernel showed the server's end in another state once they had passed: "
        "can a segment that carries data also complete a handshake?",
    )
    return feedback
