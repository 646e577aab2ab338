"""Exercise for notebook 03: predict the kernel's table after a step, then let the kernel answer.

The learner writes down, for each socket, the state they expect after one step of a
scenario; `check` runs the scenario on real sockets up to that step and compares.
"""

from __future__ import annotations

from ..kernel.sysctls import kernel_settings
from ..model.states import TcpState
from ..stepper.engine import Snapshot, Stepper
from ..stepper.scenarios import SCENARIOS
from ..timeouts import KERNEL_TIMER_TIMEOUT, SHORT_TIMEOUT, poll_until
from .feedback import Feedback

#: States the kernel passes through within moments on loopback (an ACK or SYN+ACK is due).
_PASSING = (TcpState.FIN_WAIT_1, TcpState.LAST_ACK, TcpState.SYN_SENT)


def _settled_snapshot(stepper: Stepper, predicted: dict[str, TcpState | None]) -> Snapshot:
    """Give states the kernel is still moving through (FIN-WAIT-1 to FIN-WAIT-2) a moment."""
    seen: list[Snapshot] = []  # the last snapshot is the answer, settled or not

    def settled() -> bool:
        seen.append(stepper.snapshot())
        snapshot = seen[-1]
        return all(
            snapshot.state_of(lane) is state for lane, state in predicted.items()
        ) or not any(view.state in _PASSING for view in snapshot.sockets)

    poll_until(settled, timeout=SHORT_TIMEOUT, interval=0.005)
    return seen[-1]


def check(
    predicted: dict, *, scenario: str = "client-closes-first", after: str = "client.close()"
) -> Feedback:
    """Run `scenario` up to and including step `after`, compare the kernel with `predicted`.

    `predicted` maps a socket ('listener', 'client', 'server 1', ...) to a state name in any
    spelling ('CLOSE-WAIT', 'CLOSE_WAIT', 'close_wait') or None (not in the kernel).
    """
    feedback = Feedback(f"Your table after {after} ({scenario})")
    if scenario not in SCENARIOS:
        feedback.expect(
            False, "", f"there is no scenario {scenario!r}; use one of {', '.join(SCENARIOS)}"
        )
        return feedback
    labels = [step.label for step in SCENARIOS[scenario].steps]
    if after not in labels:
        feedback.expect(False, "", f"{after!r} is not a step of {scenario}; its steps are {labels}")
        return feedback
    if scenario == "defer-accept" and kernel_settings().syncookies == 2:
        feedback.expect(False, "", "tcp_syncookies=2 here: pick another scenario")
        return feedback
    if not isinstance(predicted, dict) or not predicted:
        feedback.expect(
            False,
            "",
            "write your prediction as a dict, e.g. "
            "{'client': 'FIN-WAIT-2', 'server 1': 'CLOSE-WAIT'}",
        )
        return feedback
    try:
        expected = {
            lane: None if name is None else TcpState.from_name(name)
            for lane, name in predicted.items()
        }
    except (ValueError, AttributeError) as error:
        feedback.expect(False, "", f"{error}")
        return feedback
    with Stepper(scenario) as stepper:
        for label in labels[: labels.index(after) + 1]:
            stepper.step(label)
            if stepper.snapshot().pending:
                stepper.wait(KERNEL_TIMER_TIMEOUT)
        snapshot = _settled_snapshot(stepper, expected)
    lanes = [view.lane for view in snapshot.sockets]
    for lane, state in expected.items():
        if lane not in lanes:
            feedback.expect(
                False, "", f"there is no socket called {lane!r} here; the sockets are {lanes}"
            )
            continue
        actual = snapshot.state_of(lane)
        shown = actual.rfc_name if actual else "not in the kernel"
        guess = state.rfc_name if state else "not in the kernel"
        feedback.expect(
            actual is state,
            f"{lane}: {shown}, as you said",
            f"{lane}: you said {guess}, the kernel says {shown}",
        )
    missing = [lane for lane in lanes if lane not in expected]
    if missing:
        feedback.expect(
            False, "", f"you left out {missing}: say what the kernel holds for every socket"
        )
    return feedback
