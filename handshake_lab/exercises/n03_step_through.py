"""Exercise for notebook 03: predict the kernel's table after a step, then let the kernel answer.

The learner writes down, for each socket, the state they expect after one step of a
scenario; `check` runs the scenario on real sockets up to that step and compares with the
table the stepper shows, which is taken once the kernel has settled (after a delayed ACK).
"""

from __future__ import annotations

from ..kernel.sysctls import kernel_settings
from ..model.states import TcpState
from ..stepper.engine import Stepper
from ..stepper.scenarios import SCENARIOS
from ..timeouts import KERNEL_TIMER_TIMEOUT
from .feedback import Feedback


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
        snapshot = stepper.snapshot()  # the stepper waits for the kernel to settle
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
        hint = ""
        if state is TcpState.FIN_WAIT_1 and actual is TcpState.FIN_WAIT_2:
            hint = (
                " (FIN-WAIT-1 lasts only until the peer's delayed ACK of the FIN arrives; "
                "the table shows the states once the kernel has settled)"
            )
        feedback.expect(
            actual is state,
            f"{lane}: {shown}, as you said",
            f"{lane}: you said {guess}, the kernel says {shown}{hint}",
        )
    missing = [lane for lane in lanes if lane not in expected]
    if missing:
        feedback.expect(
            False, "", f"you left out {missing}: say what the kernel holds for every socket"
        )
    return feedback
