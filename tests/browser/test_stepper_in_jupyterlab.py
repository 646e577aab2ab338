"""The stepper in a real JupyterLab in a real Chromium, clicked through as a learner would.

- In order (notebook 03 after Run All): every scenario of the drop-down, in the drop-down's
  order, each step button clicked (some double-clicked) until the scenario offers nothing more.
- In free order (a scratch notebook showing the widget): the "Free order" checkbox, then a
  connect() refused before listen() and offered again, an accept() that blocks until the next
  connect(), then the rest; then every other scenario in an order of no scenario (the offered
  step taken least so far, ties in a shuffled order); double clicks included.
- After every click: the step was applied (the timeline image changed, the kernel is idle), a
  double click took one step, and no error anywhere (console, comm errors, widget callbacks,
  the server log with the kernels' stderr); at the end, notebook 03 as saved by JupyterLab
  passes strict nbval.
- Screenshots of the widget after every step in test-artifacts/screenshots/, named
  `NOTEBOOK--SCENARIO--NN-STEP.png` (`NN` counts the clicks, 00 is the scenario's start).

The widget DOM contract these tests rely on (set by handshake_lab's widgets):
- the stepper is a widget with class `hl-stepper`; inside it one button per step it offers,
  labelled with the call (e.g. `client.connect()`, the scenario's Step.label), a `Reset`
  button, the scenario drop-down (a select whose options are the scenarios' titles) and a
  checkbox labelled "Free order";
- its state table is an HTML widget with class `hl-socket-table` whose rows are
  `<tr data-lane="LANE" data-state="LINUX_STATE">` (`none`: not in the kernel), plus
  `data-accepted="no"|"yes"` on server-side connections (`no`: the kernel has it, accept()
  has not taken it yet);
- its timeline is an Image widget with class `hl-timeline` (a new image after every step;
  the table changes only when a kernel state does); its explanation an HTML widget with class
  `hl-explanation`.
"""

from __future__ import annotations

import random

import nbformat
import pytest
from lab_page import WIDGET_TIMEOUT, LabPage, file_slug
from saved_notebooks import assert_saved_notebook_passes_nbval

from handshake_lab.model.states import TcpState
from handshake_lab.stepper.scenarios import SCENARIOS

pytestmark = pytest.mark.browser

STEPPER_NOTEBOOK = "03-step-through.ipynb"
#: Written into JupyterLab's (temporary) folder by the free-order test.
SCRATCH_NOTEBOOK = "scratch-stepper-free-order.ipynb"
SCRATCH_SOURCE = (
    "from handshake_lab.show.stepper_widget import StepperWidget\n"
    'StepperWidget.show("basic", key="browser-test")'
)
FREE_ORDER_LABEL = "Free order"

#: What the state table must say right after the call with this label was clicked in the
#: basic scenario, in order: {call label: {lane: {row attribute: value}}}.
EXPECTED_AFTER_CALL = {
    # connect() returns once the handshake is done; the kernel finished the server side too,
    # and the connection waits in the accept queue: accept() has not been called yet.
    "client.connect()": {
        "client": {"data-state": "ESTABLISHED"},
        "server 1": {"data-state": "ESTABLISHED", "data-accepted": "no"},
    },
    # accept() only takes the already established connection off the queue.
    "server.accept()": {
        "server 1": {"data-accepted": "yes"},
    },
}

#: In order, the step at this index of every scenario is double-clicked (client.connect()
#: in each scenario today; any step would do).
DOUBLE_CLICKED_INDEX = 1

#: Free order in the basic scenario: these first, as (label, double click?), then the
#: scenario's other steps in its order. A connect() before listen() is refused and must be
#: offered again; an accept() before connect() blocks until the connect() that follows.
FREE_ORDER_START = (
    ("client.connect()", False),
    ("server.listen()", True),
    ("server.accept()", False),
    ("client.connect()", False),
)
FREE_ORDER_DOUBLE_CLICKED = "client.close()"

#: A step button appearing: at once, or when a blocked call finishes (a dropped SYN is sent
#: again after 1 s, then 2 s more; a blocked accept() needs the next connect()).
STEP_OFFER_TIMEOUT = 30.0

#: A row's data-state: a Linux TCP state name, or "none" for a socket not in the kernel (yet,
#: as server 2 while its SYN waits, or any more).
VALID_ROW_STATES = frozenset(state.linux_name for state in TcpState) | {"none"}

_JS_STEPPER_SNAPSHOT = """
() => {
  const stepper = document.querySelector('.hl-stepper');
  if (!stepper) return null;
  const table = stepper.querySelector('.hl-socket-table');
  const timelineNode = stepper.querySelector('.hl-timeline');
  const timeline = timelineNode && (timelineNode.tagName === 'IMG'
    ? timelineNode : timelineNode.querySelector('img'));
  const rows = table ? [...table.querySelectorAll('tr[data-lane]')].map((row) => {
    const attributes = {};
    for (const attribute of row.attributes) {
      if (attribute.name.startsWith('data-')) attributes[attribute.name] = attribute.value;
    }
    return attributes;
  }) : [];
  const buttons = [...stepper.querySelectorAll('button')]
    .map((button) => ({label: button.textContent.trim(), enabled: !button.disabled}));
  const select = stepper.querySelector('select');
  const panel = window.jupyterapp.shell.currentWidget;
  const kernel = panel.sessionContext.session && panel.sessionContext.session.kernel;
  return {
    table: table ? table.innerHTML : null,
    timeline: timeline ? timeline.getAttribute('src') : null,
    explanation: !!stepper.querySelector('.hl-explanation'),
    rows: rows,
    buttons: buttons,
    // ipywidgets shows the options' spaces as no-break spaces.
    scenarios: select ? [...select.options]
      .map((option) => option.textContent.replace(/\u00a0/g, ' ').trim()) : [],
    scenario: select ? select.selectedIndex : null,
    kernelIdle: !!kernel && kernel.status === 'idle',
  };
}
"""

# Done with one step: the timeline image changed (it does after every step) and the kernel is
# idle again, so every widget update the click caused, the table's included, has been applied.
_JS_STEP_APPLIED = f"""
(before) => {{
  const now = ({_JS_STEPPER_SNAPSHOT})();
  if (!now || !now.kernelIdle) return false;
  return now.timeline !== before.timeline ? now : false;
}}
"""

# The step buttons (labels among `labels`) enabled now, once the kernel is idle.
_JS_OFFERED_WHEN_IDLE = f"""
(labels) => {{
  const now = ({_JS_STEPPER_SNAPSHOT})();
  if (!now || !now.kernelIdle) return false;
  now.offered = now.buttons.filter((b) => b.enabled && labels.includes(b.label))
    .map((b) => b.label);
  return now;
}}
"""

_JS_WIDGET_RENDERED = (
    "() => !!document.querySelector('.hl-stepper .hl-socket-table')"
    " && !!document.querySelector('.hl-stepper .hl-timeline')"
    " && !!document.querySelector('.hl-stepper .hl-explanation')"
)


class StepperDriver:
    """Clicks the stepper on one LabPage, checks each step, and keeps the evidence."""

    def __init__(self, lab_page: LabPage, notebook: str) -> None:
        self.lab_page = lab_page
        self.stem = notebook.removesuffix(".ipynb")
        self.widget = lab_page.page.locator(".hl-stepper").first
        #: Errors found after a click, each prefixed with the click that caused it.
        self.problems: list[str] = []
        self.clicked: list[str] = []

    def snapshot(self) -> dict:
        return self.lab_page.page.evaluate(_JS_STEPPER_SNAPSHOT)

    def offered(self, labels) -> list[str]:
        """The step buttons enabled once the kernel is idle (a blocked call that finishes
        makes the kernel busy for a moment)."""
        now = self.lab_page.wait_for_js(
            _JS_OFFERED_WHEN_IDLE, list(labels), WIDGET_TIMEOUT, "the kernel to be idle"
        )
        return now["offered"]

    def wait_until_offered(self, label: str, labels, context: str) -> dict:
        """Wait until the kernel is idle and `label` is offered; fail with what is offered."""
        try:
            return self.lab_page.wait_for_js(
                f"(labels) => {{ const now = ({_JS_OFFERED_WHEN_IDLE})(labels);"
                f" return now && now.offered.includes({label!r}) ? now : false; }}",
                list(labels),
                STEP_OFFER_TIMEOUT,
                f"{context}: the button {label}",
            )
        except AssertionError as error:
            offered = self.offered(labels)
            raise AssertionError(
                f"{context}: {label} is not offered (a dead end?); offered now: {offered};"
                f" clicked so far: {self.clicked}; errors so far: {self.problems or 'none'};"
                f" {error}"
            ) from None

    def take(self, label: str, *, double: bool, context: str, shot: str) -> dict:
        """Click (or double-click) the step button `label`; wait until the step is applied."""
        before = self.snapshot()
        button = self.widget.get_by_role("button", name=label, exact=True).first
        how = "double click" if double else "click"
        if double:
            button.dblclick()
        else:
            button.click()
        self.clicked.append(f"{label} ({how})" if double else label)
        # Both clicks of a double click reach the kernel before this barrier's reply.
        self.lab_page.settle_kernel(f"after the {how} on {label}")
        try:
            after = self.lab_page.wait_for_js(
                _JS_STEP_APPLIED,
                before,
                WIDGET_TIMEOUT,
                f"{context}: the timeline image to change after the {how} on {label}",
            )
        except AssertionError as error:
            now = self.snapshot()
            raise AssertionError(
                f"{context}: after the {how} on {label} the timeline did not change (table"
                f" changed: {now['table'] != before['table']}); {error}"
            ) from None
        self.problems += [f"{context}, {how} on {label}: {p}" for p in self.lab_page.new_problems()]
        assert after["timeline"], f"{context}: after {label} the timeline image has no src"
        _assert_rows_valid(after, f"{context}, {label}")
        self.screenshot(shot)
        return after

    def screenshot(self, name: str) -> None:
        self.lab_page.screenshot(name, file_name=f"{self.stem}--{name}.png", element=self.widget)


def _rows_by_lane(snapshot: dict) -> dict[str, dict[str, str]]:
    return {row["data-lane"]: row for row in snapshot["rows"]}


def _assert_rows_valid(snapshot: dict, after: str) -> None:
    for row in snapshot["rows"]:
        assert row.get("data-state") in VALID_ROW_STATES, (
            f"after {after}: row {row} has neither a Linux TCP state name nor 'none'"
        )
        assert row.get("data-accepted", "yes") in ("yes", "no"), (
            f"after {after}: row {row} has data-accepted other than yes/no"
        )


def _assert_table_after(snapshot: dict, label: str, context: str) -> None:
    rows = _rows_by_lane(snapshot)
    for lane, expected in EXPECTED_AFTER_CALL.get(label, {}).items():
        assert lane in rows, f"{context}, after {label}: no row for lane {lane!r} in {list(rows)}"
        for attribute, value in expected.items():
            assert rows[lane].get(attribute) == value, (
                f"{context}, after {label}: {lane} has {attribute}={rows[lane].get(attribute)!r},"
                f" expected {value!r} (row {rows[lane]})"
            )


def _scenario_keys(titles: list[str]) -> list[str]:
    by_title = {scenario.title: key for key, scenario in SCENARIOS.items()}
    unknown = [title for title in titles if title not in by_title]
    assert not unknown, f"the drop-down offers scenarios the package does not have: {unknown}"
    keys = [by_title[title] for title in titles]
    missing = [key for key in SCENARIOS if key not in keys]
    assert not missing, f"the drop-down leaves out scenarios {missing}; it offers {titles}"
    return keys


def _wait_until_rendered(lab_page: LabPage) -> None:
    lab_page.wait_for_js(
        _JS_WIDGET_RENDERED, None, WIDGET_TIMEOUT, "the stepper (table, timeline, explanation)"
    )


def test_stepper_every_scenario_in_order(lab_page, saved_notebooks_dir, nbval_args):
    lab_page.open_notebook(STEPPER_NOTEBOOK)
    seconds = lab_page.run_all_cells()
    print(f"\nRun All in {STEPPER_NOTEBOOK}: {seconds:.1f} s")
    _wait_until_rendered(lab_page)
    lab_page.screenshot_whole_notebook(
        f"{STEPPER_NOTEBOOK.removesuffix('.ipynb')}--after-run-all.png"
    )
    lab_page.assert_no_errors()
    lab_page.new_problems()  # what Run All did is checked; from here on, the clicks
    driver = StepperDriver(lab_page, STEPPER_NOTEBOOK)
    start = driver.snapshot()
    assert any(b["label"] == "Reset" for b in start["buttons"]), "the stepper has no Reset button"
    titles = start["scenarios"]
    keys = _scenario_keys(titles)

    for option, key in enumerate(keys):
        labels = [step.label for step in SCENARIOS[key].steps]
        context = f"scenario {key!r} in order"
        if driver.snapshot()["scenario"] != option:
            driver.widget.get_by_role("combobox").first.select_option(index=option)
            lab_page.settle_kernel(f"after choosing {titles[option]!r}")
        driver.wait_until_offered(labels[0], labels, f"{context}, start")
        driver.screenshot(f"{key}--00-start")
        for index, label in enumerate(labels):
            if index:
                driver.wait_until_offered(label, labels, context)
            after = driver.take(
                label,
                double=index == DOUBLE_CLICKED_INDEX,
                context=context,
                shot=f"{key}--{index + 1:02d}-{file_slug(label)}",
            )
            if key == "basic":
                _assert_table_after(after, label, context)
        # The end: once the kernel has settled, no step is offered any more.
        lab_page.settle_kernel(f"at the end of {key!r}")
        left = driver.offered(labels)
        assert not left, f"{context}: after its last step the stepper still offers {left}"

    assert not driver.problems, "errors while clicking:\n  " + "\n  ".join(driver.problems)
    lab_page.assert_no_errors()
    assert_saved_notebook_passes_nbval(lab_page, saved_notebooks_dir, nbval_args)


def test_stepper_in_free_order(jupyterlab, lab_page):
    notebook = nbformat.v4.new_notebook()
    notebook.cells.append(nbformat.v4.new_code_cell(SCRATCH_SOURCE))
    notebook.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3 (ipykernel)",
        "language": "python",
    }
    nbformat.write(notebook, jupyterlab.path(SCRATCH_NOTEBOOK))
    lab_page.open_notebook(SCRATCH_NOTEBOOK)
    lab_page.run_all_cells()
    _wait_until_rendered(lab_page)
    lab_page.assert_no_errors()
    driver = StepperDriver(lab_page, SCRATCH_NOTEBOOK)
    labels = [step.label for step in SCENARIOS["basic"].steps]
    context = "scenario 'basic' in free order"

    free_order = driver.widget.get_by_role("checkbox", name=FREE_ORDER_LABEL, exact=True)
    if free_order.count() != 1:
        shot = lab_page.screenshot("no free order checkbox")
        pytest.fail(
            f"the stepper has {free_order.count()} checkboxes labelled {FREE_ORDER_LABEL!r}"
            f" (expected one); screenshot {shot}",
            pytrace=False,
        )
    free_order.check()
    lab_page.settle_kernel("after checking Free order")
    driver.wait_until_offered(FREE_ORDER_START[0][0], labels, f"{context}, start")
    driver.screenshot("free-order--00-start")

    plan = list(FREE_ORDER_START)
    planned = {label for label, _double in plan}
    plan += [
        (label, label == FREE_ORDER_DOUBLE_CLICKED) for label in labels if label not in planned
    ]
    for number, (label, double) in enumerate(plan, start=1):
        driver.wait_until_offered(label, labels, context)
        driver.take(
            label,
            double=double,
            context=context,
            shot=f"free-order--{number:02d}-{file_slug(label)}",
        )
    lab_page.settle_kernel("at the end of the free order")
    left = driver.offered(labels)
    assert not left, f"{context}: after every step was taken the stepper still offers {left}"

    # Every other scenario in free order too, in an order of no scenario: at each click the
    # offered step taken least so far, ties broken by a shuffle of the steps seeded with the
    # scenario's name (the same order every run, the last step kept last); every fourth click
    # a double click; until
    # nothing else is offered, or twice as many clicks as steps.
    titles = driver.snapshot()["scenarios"]
    for option, key in enumerate(_scenario_keys(titles)):
        if key == "basic":
            continue
        labels = [step.label for step in SCENARIOS[key].steps]
        context = f"scenario {key!r} in free order"
        driver.widget.get_by_role("combobox").first.select_option(index=option)
        lab_page.settle_kernel(f"after choosing {titles[option]!r}")
        taken = dict.fromkeys(labels, 0)
        # The scenario's last call (closing the listener) stays last: before it, every other
        # call gets its turn in the shuffled order.
        shuffled = random.Random(key).sample(labels[:-1], len(labels) - 1) + labels[-1:]
        rank = {label: place for place, label in enumerate(shuffled)}
        previous = None
        for number in range(1, 2 * len(labels) + 1):
            # Never the call just clicked: two quick clicks on one button are a double click
            # (only a refused connect() is offered again), which takes one step.
            offered = [label for label in driver.offered(labels) if label != previous]
            if not offered:
                break
            label = previous = min(offered, key=lambda step: (taken[step], rank[step]))
            taken[label] += 1
            driver.take(
                label,
                double=number % 4 == 0,
                context=context,
                shot=f"free-order--{key}--{number:02d}-{file_slug(label)}",
            )
    assert not driver.problems, "errors while clicking:\n  " + "\n  ".join(driver.problems)
    lab_page.assert_no_errors()
