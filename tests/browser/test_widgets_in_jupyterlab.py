"""The course widgets in a real JupyterLab in a real Chromium, as a learner meets them.

Each test opens a course notebook, runs all its cells, checks what the browser rendered (and
that nothing failed: console, widget views, cell outputs, widget callbacks), saves the notebook
from the browser, and checks that the saved notebook still passes strict nbval.

The widget DOM contract these tests rely on (set by handshake_lab's widgets):
- the stepper is a widget with class `hl-stepper`; inside it one button per next socket call,
  labelled with the call (e.g. `client.connect()`), and a `Reset` button;
- its state table is an HTML widget with class `hl-socket-table` whose rows are
  `<tr data-lane="LANE" data-state="LINUX_STATE">`, plus `data-accepted="no"|"yes"` on
  server-side connections (`no`: the kernel has it, accept() has not taken it yet);
- its timeline is an Image widget with class `hl-timeline` (a new image after every step;
  the table changes only when a kernel state does);
  its explanation an HTML widget with class `hl-explanation`;
- prediction widgets carry class `hl-prediction`.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from lab_page import WIDGET_TIMEOUT, LabPage

from handshake_lab.model.states import TcpState

pytestmark = pytest.mark.browser

STEPPER_NOTEBOOK = "03-step-through.ipynb"

#: What the state table must say right after the call with this label was clicked:
#: {call label: {lane: {row attribute: value}}}. Update here when the scenario changes.
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

#: The basic scenario is a handful of calls; more than this means the stepper never ends.
MAX_STEPS = 30

#: After the last step, how long a new call button may take to appear before we call it done.
LAST_BUTTON_GRACE = 3.0

VALID_LINUX_STATES = frozenset(state.linux_name for state in TcpState)

#: The other notebooks with widgets: what must have rendered after Run All.
RENDERED_AFTER_RUN_ALL = {
    # The ladder diagram of SYN, SYN+ACK, ACK with real sequence numbers is an image output.
    "05-packets-and-sequence-numbers.ipynb": {"output images": 1, "prediction widgets": 1},
    "04-backlog-and-the-accept-queue.ipynb": {"output images": 0, "prediction widgets": 1},
}

#: The strict nbval flags `make test-notebooks` uses (the sanitize file is added per run).
#: One strict nbval run over a saved notebook.
NBVAL_TIMEOUT = 600.0

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
  const panel = window.jupyterapp.shell.currentWidget;
  const kernel = panel.sessionContext.session && panel.sessionContext.session.kernel;
  return {
    table: table ? table.innerHTML : null,
    timeline: timeline ? timeline.getAttribute('src') : null,
    explanation: !!stepper.querySelector('.hl-explanation'),
    rows: rows,
    buttons: buttons,
    kernelIdle: !!kernel && kernel.status === 'idle',
  };
}
"""

# Done with one step: the timeline image changed (it does after every step) and the kernel is
# idle again, so every widget update the click caused, the table's included, has been applied
# (JupyterLab handles kernel messages in order, and the idle status comes after them). The
# table itself changes only when a state does: not after send() or recv(), for instance.
_JS_STEP_APPLIED = f"""
(before) => {{
  const now = ({_JS_STEPPER_SNAPSHOT})();
  if (!now || !now.kernelIdle) return false;
  return now.timeline !== before.timeline ? now : false;
}}
"""


def _snapshot(lab_page: LabPage) -> dict:
    return lab_page.page.evaluate(_JS_STEPPER_SNAPSHOT)


def _call_buttons(snapshot: dict) -> list[str]:
    return [b["label"] for b in snapshot["buttons"] if b["enabled"] and b["label"] != "Reset"]


def _rows_by_lane(snapshot: dict) -> dict[str, dict[str, str]]:
    return {row["data-lane"]: row for row in snapshot["rows"]}


def _assert_rows_valid(snapshot: dict, after: str) -> None:
    for row in snapshot["rows"]:
        assert row.get("data-state") in VALID_LINUX_STATES, (
            f"after {after}: row {row} has no valid Linux TCP state name"
        )
        assert row.get("data-accepted", "yes") in ("yes", "no"), (
            f"after {after}: row {row} has data-accepted other than yes/no"
        )


def run_strict_nbval(notebook: Path, nbval_args: Path) -> subprocess.CompletedProcess[str]:
    """Strict nbval with the flags `make test-notebooks` uses (``@notebooks/nbval.args``, whose
    paths are relative to the repository) on one notebook saved elsewhere."""
    command = [
        sys.executable,
        "-m",
        "pytest",
        f"@{nbval_args}",
        "-q",
        "--rootdir",
        str(notebook.parent),
        str(notebook),
    ]
    return subprocess.run(
        command,
        cwd=nbval_args.parent.parent,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=NBVAL_TIMEOUT,
    )


def _assert_saved_notebook_passes_nbval(lab_page, saved_notebooks_dir, nbval_args) -> None:
    saved = lab_page.save_and_copy(saved_notebooks_dir)
    result = run_strict_nbval(saved, nbval_args)
    assert result.returncode == 0, (
        f"{saved.name} as saved by JupyterLab fails strict nbval:\n"
        + result.stdout[-6000:]
        + result.stderr[-2000:]
    )


def test_stepper_walks_the_basic_scenario(lab_page, saved_notebooks_dir, nbval_args):
    lab_page.open_notebook(STEPPER_NOTEBOOK)
    lab_page.run_all_cells()
    lab_page.wait_for_js(
        "() => !!document.querySelector('.hl-stepper .hl-socket-table')"
        " && !!document.querySelector('.hl-stepper .hl-timeline')"
        " && !!document.querySelector('.hl-stepper .hl-explanation')",
        None,
        WIDGET_TIMEOUT,
        "the stepper (table, timeline, explanation) to render",
    )
    lab_page.assert_no_errors()
    before = _snapshot(lab_page)
    assert any(b["label"] == "Reset" for b in before["buttons"]), "the stepper has no Reset button"
    _assert_rows_valid(before, "Run All")
    lab_page.screenshot("start")

    clicked: list[str] = []
    for _ in range(MAX_STEPS):
        labels = _call_buttons(before)
        if not labels:
            # The last update may still be creating the next buttons' views: give them a moment.
            try:
                before = lab_page.wait_for_js(
                    f"() => {{ const s = ({_JS_STEPPER_SNAPSHOT})();"
                    " return s && s.buttons.some((b) => b.enabled && b.label !== 'Reset')"
                    " ? s : false; }",
                    None,
                    LAST_BUTTON_GRACE,
                    "another call button",
                    screenshot_on_timeout=False,
                )
            except AssertionError:
                break
            labels = _call_buttons(before)
        label = labels[0]
        stepper = lab_page.page.locator(".hl-stepper").first
        stepper.get_by_role("button", name=label, exact=True).first.click()
        try:
            after = lab_page.wait_for_js(
                _JS_STEP_APPLIED,
                before,
                WIDGET_TIMEOUT,
                f"the timeline image to change after {label}",
            )
        except AssertionError as error:
            now = _snapshot(lab_page)
            raise AssertionError(
                f"after {label}: the timeline image did not change (table changed:"
                f" {now['table'] != before['table']}); {error}"
            ) from None
        clicked.append(label)
        assert after["timeline"], f"after {label}: the timeline image has no src"
        _assert_rows_valid(after, label)
        rows = _rows_by_lane(after)
        for lane, expected in EXPECTED_AFTER_CALL.get(label, {}).items():
            assert lane in rows, f"after {label}: no row for lane {lane!r} in {list(rows)}"
            for attribute, value in expected.items():
                assert rows[lane].get(attribute) == value, (
                    f"after {label}: {lane} has {attribute}={rows[lane].get(attribute)!r},"
                    f" expected {value!r} (row {rows[lane]})"
                )
        lab_page.screenshot(f"after-{label}")
        before = after
    else:
        pytest.fail(f"the stepper still offers calls after {MAX_STEPS} clicks: {clicked}")

    missing = [label for label in EXPECTED_AFTER_CALL if label not in clicked]
    assert not missing, f"the basic scenario never offered {missing}; it offered {clicked}"
    lab_page.assert_no_errors()
    _assert_saved_notebook_passes_nbval(lab_page, saved_notebooks_dir, nbval_args)


@pytest.mark.parametrize("notebook", list(RENDERED_AFTER_RUN_ALL))
def test_notebook_widgets_and_figures_render(notebook, lab_page, saved_notebooks_dir, nbval_args):
    expected = RENDERED_AFTER_RUN_ALL[notebook]
    lab_page.open_notebook(notebook)
    lab_page.run_all_cells()
    lab_page.wait_for_js(
        """([images, predictions]) =>
             document.querySelectorAll('.jp-OutputArea-output img').length >= images
             && document.querySelectorAll('.hl-prediction').length >= predictions""",
        [expected["output images"], expected["prediction widgets"]],
        WIDGET_TIMEOUT,
        f"{expected['output images']} output image(s) and"
        f" {expected['prediction widgets']} prediction widget(s) in {notebook}",
    )
    lab_page.screenshot("run-all")
    lab_page.assert_no_errors()
    _assert_saved_notebook_passes_nbval(lab_page, saved_notebooks_dir, nbval_args)
