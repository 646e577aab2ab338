"""A JupyterLab page in Debian's Chromium, driven through Playwright's sync API, with the
checks the browser tests share.

What a learner sees is what the browser renders, so the tests click the widgets in a real
Chromium on the JupyterLab that lab_server.py runs.

Rules:
- Nothing sleeps to order things: every wait polls a JS predicate in the page until a named
  deadline, and a timeout fails with a screenshot and the console errors as evidence.
- Chromium gets a new, empty profile for every page; Playwright starts it detached and kills
  its process group on close.
- Checks read JupyterLab's own models through `window.jupyterapp` (exposed with
  --LabApp.expose_app_in_browser) and the kernel messages on the page's websockets (read by
  kernel_frames.py), not pixels.
- Playwright is imported only where a page is made or waited on, so that this module (and
  the find_chromium check the skips rely on) imports without it.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

from kernel_frames import callback_error, decode_kernel_message

if TYPE_CHECKING:
    from lab_server import JupyterLab

#: A notebook opening and its kernel reaching idle.
KERNEL_READY_TIMEOUT = 60.0
#: Run All on one course notebook; nbval allows 60 s per cell, a whole notebook gets this.
RUN_ALL_TIMEOUT = 240.0
#: A widget view appearing or updating after the kernel has answered.
WIDGET_TIMEOUT = 30.0
#: docmanager:save writing the notebook.
SAVE_TIMEOUT = 30.0
#: Playwright's default for one action (click, locator wait), in seconds.
ACTION_TIMEOUT = 30.0

#: The flags that worked for Debian's Chromium here (see the project's notes on browser testing).
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--headless=new",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
CHROMIUM_MISSING = "Chromium is not installed: apt-get install -y chromium"

#: Console errors that say nothing about the course, each with the reason it is harmless.
#: Everything else printed at level "error" fails the test. Empty: JupyterLab 4.6 with
#: ipywidgets 8.1 printed no console error in a clean run here (news and update checks are
#: switched off where lab_server.py starts JupyterLab, so nothing tries to reach
#: the internet).
BENIGN_CONSOLE_ERRORS: list[tuple[re.Pattern[str], str]] = []


def find_chromium() -> str | None:
    """Debian's Chromium: /usr/bin/chromium, else `chromium` on PATH; None when absent."""
    preferred = Path("/usr/bin/chromium")
    if preferred.is_file() and os.access(preferred, os.X_OK):
        return str(preferred)
    return shutil.which("chromium")


_JS_NOTEBOOK_READY = """
(path) => {
  const app = window.jupyterapp;
  const panel = app && app.shell && app.shell.currentWidget;
  if (!panel || !panel.context || panel.context.path !== path || !panel.context.isReady) {
    return false;
  }
  const kernel = panel.sessionContext.session && panel.sessionContext.session.kernel;
  return !!kernel && kernel.status === 'idle' && kernel.connectionStatus === 'connected';
}
"""

_JS_START_RUN_ALL = """
() => {
  window.__hlRunAll = {done: false};
  window.jupyterapp.commands.execute('notebook:run-all-cells').then(
    (ok) => { window.__hlRunAll = {done: true, ok: ok !== false}; },
    (error) => { window.__hlRunAll = {done: true, ok: false, error: String(error)}; });
}
"""

# Finished: the Run All promise settled, no cell shows the [*] prompt, the kernel is idle.
_JS_RUN_ALL_FINISHED = """
() => {
  const state = window.__hlRunAll;
  if (!state || !state.done) return false;
  const panel = window.jupyterapp.shell.currentWidget;
  const running = [...panel.node.querySelectorAll('.jp-InputArea-prompt')]
    .some((prompt) => prompt.textContent.includes('[*]'));
  const kernel = panel.sessionContext.session && panel.sessionContext.session.kernel;
  return !running && !!kernel && kernel.status === 'idle' ? state : false;
}
"""

# Problems in cell outputs, skipping cells tagged raises-exception (nbval's own convention for
# a cell that is meant to raise): error outputs, and stderr that carries a traceback, read from
# both the model and the rendered DOM.
_JS_CELL_PROBLEMS = """
() => {
  const panel = window.jupyterapp.shell.currentWidget;
  const problems = [];
  panel.content.widgets.forEach((cell, index) => {
    const model = cell.model;
    if (model.type !== 'code') return;
    const tags = model.getMetadata('tags') || [];
    if (tags.includes('raises-exception')) return;
    const label = `cell ${index + 1}`;
    for (const output of model.outputs.toJSON()) {
      if (output.output_type === 'error') {
        problems.push(`${label}: ${output.ename}: ${output.evalue}`);
      } else if (output.output_type === 'stream' && output.name === 'stderr') {
        const text = Array.isArray(output.text) ? output.text.join('') : String(output.text);
        if (/Traceback/.test(text)) problems.push(`${label} stderr: ${text.slice(0, 500)}`);
      }
    }
    const selector = '.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]';
    for (const node of cell.node.querySelectorAll(selector)) {
      if (/Traceback/.test(node.textContent)) {
        problems.push(`${label} shows a traceback: ${node.textContent.slice(0, 500)}`);
      }
    }
  });
  return problems;
}
"""

_JS_START_SAVE = """
() => {
  window.__hlSave = {done: false};
  window.jupyterapp.commands.execute('docmanager:save').then(
    () => { window.__hlSave = {done: true}; },
    (error) => { window.__hlSave = {done: true, error: String(error)}; });
}
"""

_JS_SAVED = """
() => {
  const state = window.__hlSave;
  const panel = window.jupyterapp.shell.currentWidget;
  return !!state && state.done && (state.error || !panel.context.model.dirty) ? state : false;
}
"""


class LabPage:
    """One Chromium page (fresh profile) on a JupyterLab, with the checks the tests share."""

    def __init__(self, lab: JupyterLab, page, screenshots_dir: Path, name: str) -> None:
        self.lab = lab
        self.page = page
        self.screenshots_dir = Path(screenshots_dir)
        self.name = name
        self.console_errors: list[str] = []
        self.kernel_errors: list[str] = []
        self.notebook: str | None = None
        self._shots = 0
        page.set_default_timeout(ACTION_TIMEOUT * 1000)
        page.on("console", self._on_console)
        page.on("pageerror", lambda error: self.console_errors.append(f"page error: {error}"))
        page.on("websocket", self._on_websocket)

    # -- evidence collected while the page lives

    def _on_console(self, message) -> None:
        if message.type != "error":
            return
        text = message.text
        location = message.location or {}
        where = location.get("url", "")
        entry = f"{text} ({where})" if where else text
        if not any(pattern.search(entry) for pattern, _reason in BENIGN_CONSOLE_ERRORS):
            self.console_errors.append(entry)

    def _on_websocket(self, websocket) -> None:
        if "/api/kernels/" in websocket.url:
            websocket.on("framereceived", self._on_kernel_frame)

    def _on_kernel_frame(self, payload) -> None:
        """Errors the kernel reports for widget callbacks (clicks).

        JupyterLab sends those to its log console, not to a cell, so a broken click handler is
        invisible in the notebook; here they are read off the kernel websocket itself.
        """
        message = decode_kernel_message(payload)
        error = None if message is None else callback_error(message)
        if error is not None:
            self.kernel_errors.append(error)

    # -- actions

    def open_notebook(self, name: str) -> None:
        """Open `name` with ?reset and wait until its kernel is connected and idle."""
        if not self.lab.path(name).is_file():
            raise AssertionError(f"notebooks/{name} does not exist")
        self.notebook = name
        self.page.goto(self.lab.notebook_url(name))
        self.wait_for_js(
            _JS_NOTEBOOK_READY, name, KERNEL_READY_TIMEOUT, f"{name} to open with an idle kernel"
        )

    def run_all_cells(self) -> float:
        """Run All, then wait (deadline) until every cell has finished; return the seconds."""
        started = time.monotonic()
        self.page.evaluate(_JS_START_RUN_ALL)
        state = self.wait_for_js(
            _JS_RUN_ALL_FINISHED, None, RUN_ALL_TIMEOUT, f"Run All in {self.notebook} to finish"
        )
        if state.get("error"):
            raise AssertionError(f"Run All failed in {self.notebook}: {state['error']}")
        return time.monotonic() - started

    def save_and_copy(self, destination_dir: Path) -> Path:
        """docmanager:save, wait until written, copy the file out; return the saved original."""
        self.page.evaluate(_JS_START_SAVE)
        state = self.wait_for_js(_JS_SAVED, None, SAVE_TIMEOUT, f"{self.notebook} to be saved")
        if state.get("error"):
            raise AssertionError(f"saving {self.notebook} failed: {state['error']}")
        saved = self.lab.path(self.notebook)
        destination_dir.mkdir(parents=True, exist_ok=True)
        shutil.copy2(saved, destination_dir / saved.name)
        return saved

    def screenshot(self, label: str) -> Path:
        self._shots += 1
        self.screenshots_dir.mkdir(parents=True, exist_ok=True)
        slug = re.sub(r"[^A-Za-z0-9]+", "-", label).strip("-")
        path = self.screenshots_dir / f"{self.name}-{self._shots:02d}-{slug}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path

    def wait_for_js(
        self, expression: str, arg, timeout: float, what: str, *, screenshot_on_timeout: bool = True
    ):
        """Poll a JS predicate in the page until truthy; fail naming `what`, with evidence."""
        from playwright.sync_api import TimeoutError as PlaywrightTimeout

        try:
            handle = self.page.wait_for_function(
                expression, arg=arg, timeout=timeout * 1000, polling=100
            )
        except PlaywrightTimeout:
            shot = self._failure_screenshot(what) if screenshot_on_timeout else "not taken"
            raise AssertionError(
                f"timed out after {timeout:.0f} s waiting for {what}; screenshot {shot}; "
                f"console errors: {self.console_errors or 'none'}"
            ) from None
        return handle.json_value()

    def _failure_screenshot(self, what: str) -> str:
        try:
            return str(self.screenshot(f"FAILED-{what}"))
        except Exception as error:  # a screenshot must never hide the real failure
            return f"(none: {error})"

    # -- checks

    def assert_no_errors(self) -> None:
        """No console errors, no 'Error displaying widget', no cell or callback errors."""
        problems = []
        if self.console_errors:
            problems.append("browser console errors:\n  " + "\n  ".join(self.console_errors))
        widget_errors = self.page.get_by_text("Error displaying widget").count()
        if widget_errors:
            problems.append(f"{widget_errors} x 'Error displaying widget'")
        cell_problems = self.page.evaluate(_JS_CELL_PROBLEMS)
        if cell_problems:
            problems.append("cell errors:\n  " + "\n  ".join(cell_problems))
        if self.kernel_errors:
            problems.append(
                "kernel errors in widget callbacks:\n  " + "\n  ".join(self.kernel_errors)
            )
        if problems:
            shot = self._failure_screenshot("errors")
            raise AssertionError(f"{self.notebook}: " + "\n".join(problems) + f"\n({shot})")


@contextlib.contextmanager
def chromium_page(lab: JupyterLab, screenshots_dir: Path, name: str):
    """A LabPage in a new headless Chromium with an empty profile; always closed on exit."""
    from playwright.sync_api import sync_playwright

    executable = find_chromium()
    if executable is None:
        raise RuntimeError(CHROMIUM_MISSING)
    with (
        tempfile.TemporaryDirectory(prefix="hl-chromium-profile-") as profile,
        sync_playwright() as playwright,
    ):
        context = playwright.chromium.launch_persistent_context(
            user_data_dir=profile,
            executable_path=executable,
            args=CHROMIUM_ARGS,
            headless=True,
            viewport={"width": 1400, "height": 1000},
        )
        try:
            page = context.pages[0] if context.pages else context.new_page()
            yield LabPage(lab, page, screenshots_dir, name)
        finally:
            context.close()
