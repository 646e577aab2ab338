"""Every course notebook in a real JupyterLab in a real Chromium, as a learner meets it.

- Opened as stored (nothing run), no notebook shows a prediction's answer: the cells from a
  Prediction up to its reveal carry the tag `prediction` and are stored without outputs, and
  no reveal phrase (read from handshake_lab's Prediction by prediction_texts.py) is on the page.
- Run All finishes with no error anywhere (console, widget views, cells, widget callbacks,
  the server log with the kernels' stderr) and shows no answer before the learner commits;
  committing afterwards shows the verdict at once.
- Screenshots: each notebook as opened and after Run All, whole, in test-artifacts/screenshots/
  (`NN-name--as-opened.png`, `NN-name--after-run-all.png`).

The Prediction widget contract: a widget with class `hl-prediction`, its choices as radio
buttons, and a button whose label starts with "Commit".
The stepper notebook (03) is run and clicked through in test_stepper_in_jupyterlab.py.
"""

from __future__ import annotations

import re

import pytest
from lab_page import WIDGET_TIMEOUT, LabPage
from prediction_texts import found_in, prediction_texts
from saved_notebooks import assert_saved_notebook_passes_nbval

pytestmark = pytest.mark.browser

PREDICTION_TAG = "prediction"
#: A code cell that makes a Prediction (the import line does not match).
MAKES_PREDICTION = re.compile(r"\bPrediction\(")
#: Run in test_stepper_in_jupyterlab.py, with the stepper clicked through.
STEPPER_NOTEBOOK = "03-step-through.ipynb"
#: "At once": the verdict after Commit needs only the kernel's answer to the click.
VERDICT_TIMEOUT = 10.0
#: Where Run All then Commit is tried: the first notebook with a Prediction.
COMMIT_NOTEBOOK = "00-start-here.ipynb"

#: The notebooks whose widgets and figures are counted after Run All, and which are saved
#: from JupyterLab and run through strict nbval (the others only run and are checked for errors).
RENDERED_AFTER_RUN_ALL = {
    # The ladder diagram of SYN, SYN+ACK, ACK with real sequence numbers is an image output.
    "05-packets-and-sequence-numbers.ipynb": {"output images": 1, "prediction widgets": 1},
    "04-backlog-and-the-accept-queue.ipynb": {"output images": 0, "prediction widgets": 1},
}


def _stem(notebook: str) -> str:
    return notebook.removesuffix(".ipynb")


def _answers_shown(lab_page: LabPage) -> list[str]:
    """Answer phrases in any cell's outputs (model) or anywhere the notebook renders (DOM)."""
    answer = prediction_texts().answer
    shown = []
    for index, cell in enumerate(lab_page.cells(), start=1):
        for phrase in found_in(cell["outputText"], answer):
            shown.append(f"cell {index} output says {phrase!r}")
    for phrase in found_in(lab_page.notebook_text(), answer):
        shown.append(f"the page shows {phrase!r}")
    return shown


def test_notebook_as_stored_shows_no_answer(course_notebook, lab_page):
    lab_page.open_notebook(course_notebook, wait_for_kernel=False)
    lab_page.screenshot_whole_notebook(f"{_stem(course_notebook)}--as-opened.png")
    cells = lab_page.cells()
    problems = []
    for index, cell in enumerate(cells, start=1):
        tagged = PREDICTION_TAG in cell["tags"]
        if cell["type"] == "code" and MAKES_PREDICTION.search(cell["source"]) and not tagged:
            problems.append(f"cell {index} makes a Prediction but is not tagged {PREDICTION_TAG!r}")
        if tagged and cell["outputs"]:
            problems.append(
                f"cell {index} is tagged {PREDICTION_TAG!r} but is stored with"
                f" {cell['outputs']} output(s): {cell['outputText'][:200]!r}"
            )
    problems += _answers_shown(lab_page)
    assert not problems, f"{course_notebook} as stored gives a prediction away:\n  " + "\n  ".join(
        problems
    )


#: Once the kernel has answered, the notebook is what the file holds: not modified, and no
#: "get Jupyter news?" pop-up over it (both set by the course: tools/notebooks.py's canonical
#: form and lab-settings/).
_JS_MODIFIED_AND_NEWS = """async () => {
  const panel = window.jupyterapp.shell.currentWidget;
  await panel.sessionContext.session.kernel.info;
  return [panel.context.model.dirty, document.body.innerText.includes('Jupyter news')];
}"""


def test_notebook_opens_unmodified_with_no_news_pop_up(course_notebook, lab_page):
    lab_page.open_notebook(course_notebook)
    modified, news = lab_page.page.evaluate(_JS_MODIFIED_AND_NEWS)
    assert not modified, f"{course_notebook} shows as modified as soon as its kernel starts"
    assert not news, "JupyterLab asks about Jupyter news over the notebook"


def test_notebook_runs_all_cells(course_notebook, lab_page, saved_notebooks_dir, nbval_args):
    if course_notebook == STEPPER_NOTEBOOK:
        pytest.skip("run with the stepper clicked through in test_stepper_in_jupyterlab.py")
    lab_page.open_notebook(course_notebook)
    seconds = lab_page.run_all_cells()
    print(f"\nRun All in {course_notebook}: {seconds:.1f} s")
    expected = RENDERED_AFTER_RUN_ALL.get(course_notebook)
    if expected is not None:
        lab_page.wait_for_js(
            """([images, predictions]) =>
                 document.querySelectorAll('.jp-OutputArea-output img').length >= images
                 && document.querySelectorAll('.hl-prediction').length >= predictions""",
            [expected["output images"], expected["prediction widgets"]],
            WIDGET_TIMEOUT,
            f"{expected['output images']} output image(s) and"
            f" {expected['prediction widgets']} prediction widget(s) in {course_notebook}",
        )
    lab_page.screenshot_whole_notebook(f"{_stem(course_notebook)}--after-run-all.png")
    lab_page.assert_no_errors()
    shown = _answers_shown(lab_page)
    if expected is not None:
        assert_saved_notebook_passes_nbval(lab_page, saved_notebooks_dir, nbval_args)
    assert not shown, (
        f"{course_notebook}: after Run All, with nothing committed, the answer shows:\n  "
        + "\n  ".join(shown)
    )


def test_commit_after_run_all_shows_the_verdict(lab_page):
    texts = prediction_texts()
    assert texts.matches and texts.disagrees, (
        f"no verdict phrases could be read from handshake_lab's Prediction: {texts}"
    )
    lab_page.open_notebook(COMMIT_NOTEBOOK)
    lab_page.run_all_cells()
    lab_page.wait_for_js(
        "() => document.querySelectorAll('.hl-prediction input[type=radio]').length >= 2",
        None,
        WIDGET_TIMEOUT,
        f"a Prediction widget with its choices in {COMMIT_NOTEBOOK}",
    )
    lab_page.assert_no_errors()
    widget = lab_page.page.locator(".hl-prediction").first
    widget.scroll_into_view_if_needed()
    lab_page.screenshot(
        "before commit", file_name=f"{_stem(COMMIT_NOTEBOOK)}--prediction-before-commit.png"
    )
    # Before committing, Run All must not have shown the answer (reported at the end, so that
    # the commit is tried as well).
    shown_before = _answers_shown(lab_page)

    problems = []
    if shown_before:
        problems.append(
            "after Run All, before any commit, the answer shows:\n  " + "\n  ".join(shown_before)
        )
    widget.get_by_role("radio").first.check()
    commit = widget.get_by_role("button", name=re.compile(r"^\s*Commit"))
    assert commit.count() == 1, f"the first Prediction has {commit.count()} Commit buttons"
    commit.click()
    verdicts = sorted(texts.verdicts)
    try:
        shown = lab_page.wait_for_js(
            """(verdicts) => {
                 const text = document.querySelector('.hl-prediction').textContent
                   .replace(/\\s+/g, ' ');
                 return verdicts.some((verdict) => text.includes(verdict)) ? text : false;
               }""",
            verdicts,
            VERDICT_TIMEOUT,
            f"the first Prediction to show a verdict ({' / '.join(verdicts)}) after Commit",
        )
        print(f"\nthe Prediction says after Commit: {shown.strip()[:300]}")
    except AssertionError as error:
        now = widget.text_content() or ""
        problems.append(f"no verdict after Commit; the widget says {now.strip()[:300]!r}: {error}")
    lab_page.screenshot(
        "after commit", file_name=f"{_stem(COMMIT_NOTEBOOK)}--prediction-after-commit.png"
    )
    lab_page.assert_no_errors()
    assert not problems, f"{COMMIT_NOTEBOOK}:\n" + "\n".join(problems)
