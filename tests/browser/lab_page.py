"""A JupyterLab page in Debian's Chromium, driven through Playwright's sync API, with the
checks the browser tests share.

What a learner sees is what the browser renders, so the tests click the widgets in a real
Chromium on the JupyterLab that lab_server.py runs.

Rules:
- Nothing sleeps to order things: every wait polls a JS predicate in the page until a named
  deadline, and a timeout fails with a screenshot and the console errors as evidence.
- "No errors" means all of: browser console errors, comm errors at any console level,
  "Error displaying widget", cell errors, widget-callback errors on the kernel websocket, and
  problems in JupyterLab's server log (which carries the kernels' stderr) since the page opened.
- Chromium gets a new, empty profile for every page (one page per test module: JupyterLab is
  loaded once and notebooks are opened in it); Playwright starts it detached and kills its
  process group on close.
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

from kernel_frames import (
    COMM_ERROR_PATTERN,
    callback_error,
    decode_kernel_message,
    server_log_problems,
    widget_control_comm_id,
)

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
#: A notebook's cells rendered after it opened (no kernel needed).
NOTEBOOK_RENDER_TIMEOUT = 60.0
#: The tallest whole-notebook screenshot, in CSS pixels (Chromium's limit is far above).
WHOLE_NOTEBOOK_MAX_HEIGHT = 16000

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

# Loaded and restored: a document opened before the layout is restored (here: reset) may be
# closed again by the restorer.
_JS_LAB_READY = """
() => {
  const app = window.jupyterapp;
  if (!app || !app.shell || !app.restored) return false;
  if (window.__hlRestored === undefined) {
    window.__hlRestored = false;
    app.restored.then(() => { window.__hlRestored = true; });
  }
  return window.__hlRestored && app.commands.hasCommand('docmanager:open')
    && app.commands.hasCommand('notebook:run-all-cells');
}
"""

_JS_START_OPEN = """
(path) => {
  window.__hlOpen = {done: false};
  window.jupyterapp.commands.execute('docmanager:open', {path: path}).then(
    () => { window.__hlOpen = {done: true}; },
    (error) => { window.__hlOpen = {done: true, error: String(error)}; });
}
"""

# Shut every document's kernel down from the page (the way File > Close and Shut Down Notebook
# does), then close the documents, dropping unsaved changes (no "Save?" dialog).
_JS_CLOSE_ALL = """
() => {
  window.__hlClosed = false;
  const documents = [...window.jupyterapp.shell.widgets('main')].filter((w) => w.context);
  Promise.allSettled(documents.map((w) => w.sessionContext && w.sessionContext.shutdown()))
    .then(() => {
      for (const widget of documents) {
        if (widget.context.model) widget.context.model.dirty = false;
        widget.close();
      }
      window.__hlClosed = true;
    });
}
"""

# No document left (JupyterLab opens a Launcher in an empty main area: that one may stay).
_JS_NOTHING_OPEN = """
() => window.__hlClosed === true
  && ![...window.jupyterapp.shell.widgets('main')].some((w) => w.context)
"""

_JS_NOTEBOOK_RENDERED = """
(path) => {
  const app = window.jupyterapp;
  const panel = app && app.shell && app.shell.currentWidget;
  if (!panel || !panel.context || panel.context.path !== path || !panel.context.isReady) {
    return false;
  }
  // The tests' settings attach every cell (lab_server.py); until they reach the notebook,
  // cells out of view may still be detached.
  if (panel.content.notebookConfig.windowingMode !== 'none') return false;
  const count = panel.content.model.cells.length;
  return count > 0 && panel.content.widgets.length === count
    && panel.content.widgets.every((cell) => cell.isAttached || cell.node.isConnected);
}
"""

# Every cell of the open notebook as its model holds it: type, tags, source, outputs' text.
_JS_CELLS = """
() => {
  const panel = window.jupyterapp.shell.currentWidget;
  const cells = [];
  for (const model of panel.content.model.cells) {
    const outputs = model.type === 'code' ? model.outputs.toJSON() : [];
    const texts = [];
    for (const output of outputs) {
      if (output.text !== undefined) {
        texts.push(Array.isArray(output.text) ? output.text.join('') : String(output.text));
      }
      for (const value of Object.values(output.data || {})) {
        texts.push(typeof value === 'string' ? value
          : Array.isArray(value) ? value.join('') : JSON.stringify(value));
      }
      if (output.evalue !== undefined) texts.push(`${output.ename}: ${output.evalue}`);
    }
    cells.push({
      type: model.type,
      tags: model.getMetadata('tags') || [],
      source: model.sharedModel.getSource(),
      outputs: outputs.length,
      executionCount: model.type === 'code' ? model.executionCount : null,
      outputText: texts.join('\\n'),
    });
  }
  return cells;
}
"""

# A silent, empty execute request: the kernel handles shell messages in order (widget clicks
# are comm messages on the shell channel) and its iopub messages go out in order, so once this
# request's reply and its idle status are in, everything the earlier clicks caused, stderr
# included, has reached the page.
_JS_KERNEL_BARRIER = """
async () => {
  const panel = window.jupyterapp.shell.currentWidget;
  const kernel = panel.sessionContext.session && panel.sessionContext.session.kernel;
  if (!kernel) return 'no kernel';
  const future = kernel.requestExecute({code: '', silent: true, store_history: false});
  await future.done;
  return 'ok';
}
"""

_JS_KERNEL_IDLE = """
() => {
  const panel = window.jupyterapp.shell.currentWidget;
  const kernel = panel.sessionContext.session && panel.sessionContext.session.kernel;
  return !!kernel && kernel.status === 'idle';
}
"""

# The notebook's scrolling area: its full height, and how tall it shows now.
_JS_NOTEBOOK_HEIGHTS = """
() => {
  const panel = window.jupyterapp.shell.currentWidget;
  const node = panel.content.node;
  const scroller = node.querySelector('.jp-WindowedPanel-outer') || node;
  return {full: scroller.scrollHeight, shown: scroller.clientHeight,
          page: document.documentElement.clientHeight};
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
        self._control_comm_ids: set[str] = set()
        self.begin(name)
        page.set_default_timeout(ACTION_TIMEOUT * 1000)
        page.on("console", self._on_console)
        page.on("pageerror", self._on_page_error)
        page.on("websocket", self._on_websocket)

    def begin(self, name: str) -> None:
        """Start a test's part of the page's life: its name, and no evidence yet."""
        self.name = name
        self.console_errors: list[str] = []
        self.kernel_errors: list[str] = []
        self.comm_errors: list[str] = []
        self.notebook: str | None = None
        self._log_start = self._log_checked = self.lab.log_size()
        self._reported = {"console": 0, "comm": 0, "kernel": 0}
        self._shots = 0

    # -- evidence collected while the page lives

    def _on_console(self, message) -> None:
        text = message.text
        if re.search(COMM_ERROR_PATTERN, text, re.IGNORECASE):
            self.comm_errors.append(f"console {message.type}: {text[:300]}")
        if message.type != "error":
            return
        location = message.location or {}
        where = location.get("url", "")
        entry = f"{text} ({where})" if where else text
        if not any(pattern.search(entry) for pattern, _reason in BENIGN_CONSOLE_ERRORS):
            self.console_errors.append(entry)

    def _on_page_error(self, error) -> None:
        self.console_errors.append(f"page error: {error}")
        if re.search(COMM_ERROR_PATTERN, str(error), re.IGNORECASE):
            self.comm_errors.append(f"page error: {str(error)[:300]}")

    def _on_websocket(self, websocket) -> None:
        if "/api/kernels/" in websocket.url:
            websocket.on("framereceived", self._on_kernel_frame)
            websocket.on("framesent", self._on_frame_sent)

    def _on_frame_sent(self, payload) -> None:
        message = decode_kernel_message(payload)
        comm_id = None if message is None else widget_control_comm_id(message)
        if comm_id is not None:
            self._control_comm_ids.add(comm_id)

    def _on_kernel_frame(self, payload) -> None:
        """Errors the kernel reports for widget callbacks (clicks).

        JupyterLab sends those to its log console, not to a cell, so a broken click handler is
        invisible in the notebook; here they are read off the kernel websocket itself.
        """
        message = decode_kernel_message(payload)
        error = None if message is None else callback_error(message, self._control_comm_ids)
        if error is not None:
            self.kernel_errors.append(error)

    # -- actions

    def load_lab(self) -> None:
        """Load JupyterLab itself (?reset: no saved workspace), with no document open."""
        self.page.goto(self.lab.lab_url())
        self.wait_for_js(_JS_LAB_READY, None, KERNEL_READY_TIMEOUT, "JupyterLab to load")

    def open_notebook(self, name: str, *, wait_for_kernel: bool = True) -> None:
        """Open `name` in the loaded JupyterLab (the way its file browser does) and wait until
        its cells are rendered and (by default) its kernel is connected and idle."""
        if not self.lab.path(name).is_file():
            raise AssertionError(f"notebooks/{name} does not exist")
        self.notebook = name
        if not self.page.evaluate(_JS_LAB_READY):
            self.load_lab()
        self.page.evaluate(_JS_START_OPEN, name)
        self.wait_for_js(
            _JS_NOTEBOOK_RENDERED, name, NOTEBOOK_RENDER_TIMEOUT, f"{name} to open and render"
        )
        if wait_for_kernel:
            self.wait_for_js(
                _JS_NOTEBOOK_READY, name, KERNEL_READY_TIMEOUT, f"{name} to get an idle kernel"
            )

    def close_documents(self) -> None:
        """Close every open document without saving (a test saves what it wants itself)."""
        try:
            self.page.evaluate(_JS_CLOSE_ALL)
            self.wait_for_js(
                _JS_NOTHING_OPEN,
                None,
                WIDGET_TIMEOUT,
                "every document to close",
                screenshot_on_timeout=False,
            )
        except Exception:  # a broken page is replaced: the next test gets a fresh JupyterLab
            self.load_lab()

    def cells(self) -> list[dict]:
        """Every cell of the open notebook as its model holds it (see _JS_CELLS)."""
        return self.page.evaluate(_JS_CELLS)

    def notebook_text(self) -> str:
        """All the text the open notebook renders (every cell is in the DOM: JupyterLab's
        default windowing only skips painting cells out of view)."""
        return self.page.evaluate(
            "() => window.jupyterapp.shell.currentWidget.content.node.textContent"
        )

    def settle_kernel(self, what: str) -> None:
        """Wait until the kernel has handled every message sent so far and is idle again."""
        self.page.evaluate(_JS_KERNEL_BARRIER)
        self.wait_for_js(_JS_KERNEL_IDLE, None, WIDGET_TIMEOUT, f"the kernel to be idle {what}")

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

    def screenshot(self, label: str, *, file_name: str | None = None, element=None) -> Path:
        """The page (or one element, a Playwright locator) as a PNG in the screenshots folder;
        named after the test and a running number unless `file_name` says otherwise."""
        self._shots += 1
        self.screenshots_dir.mkdir(parents=True, exist_ok=True)
        slug = file_slug(label)[:80]
        path = self.screenshots_dir / (file_name or f"{self.name}-{self._shots:02d}-{slug}.png")
        # Bytes written here, not path=: Playwright writes files from its event loop's thread
        # pool, whose threads outlive a test and would count as left behind.
        if element is not None:
            element.scroll_into_view_if_needed()
            path.write_bytes(element.screenshot())
        else:
            path.write_bytes(self.page.screenshot(full_page=True))
        return path

    def screenshot_whole_notebook(self, file_name: str) -> Path:
        """The whole open notebook in one image: the window is made as tall as the notebook
        (up to WHOLE_NOTEBOOK_MAX_HEIGHT), shot, and put back."""
        viewport = self.page.viewport_size
        heights = self.page.evaluate(_JS_NOTEBOOK_HEIGHTS)
        extra = heights["full"] - heights["shown"]
        tall = min(viewport["height"] + max(extra, 0), WHOLE_NOTEBOOK_MAX_HEIGHT)
        try:
            self.page.set_viewport_size({"width": viewport["width"], "height": tall})
            self.wait_for_js(
                f"() => ({_JS_NOTEBOOK_HEIGHTS})().page === {tall}",
                None,
                WIDGET_TIMEOUT,
                f"the window to grow to {tall} px for a whole-notebook screenshot",
            )
            return self.screenshot("whole notebook", file_name=file_name)
        finally:
            self.page.set_viewport_size(viewport)

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
            log = server_log_problems(self.lab.log_since(self._log_start))
            raise AssertionError(
                f"timed out after {timeout:.0f} s waiting for {what}; screenshot {shot}; "
                f"console errors: {self.console_errors or 'none'}; "
                f"comm errors: {self.comm_errors or 'none'}; server log problems: {log or 'none'}"
            ) from None
        return handle.json_value()

    def _failure_screenshot(self, what: str) -> str:
        try:
            return str(self.screenshot(f"FAILED-{what}"))
        except Exception as error:  # a screenshot must never hide the real failure
            return f"(none: {error})"

    # -- checks

    def new_problems(self) -> list[str]:
        """Console, comm, widget-callback and server-log problems since the last call: what the
        last action caused (assert_no_errors checks the whole page's life)."""
        found = []
        for kind, seen in (
            ("console", self.console_errors),
            ("comm", self.comm_errors),
            ("kernel", self.kernel_errors),
        ):
            found += [f"{kind}: {entry}" for entry in seen[self._reported[kind] :]]
            self._reported[kind] = len(seen)
        size = self.lab.log_size()
        log = self.lab.log_since(self._log_checked)
        self._log_checked = size
        found += [f"server log: {entry}" for entry in server_log_problems(log)]
        return found

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
        if self.comm_errors:
            problems.append("comm errors in the browser:\n  " + "\n  ".join(self.comm_errors))
        log_problems = server_log_problems(self.lab.log_since(self._log_start))
        if log_problems:
            problems.append(
                "JupyterLab's server log (kernel stderr included):\n  " + "\n  ".join(log_problems)
            )
        if problems:
            shot = self._failure_screenshot("errors")
            raise AssertionError(f"{self.notebook}: " + "\n".join(problems) + f"\n({shot})")


def file_slug(text: str) -> str:
    """`text` as part of a file name: runs of anything but letters, digits and dots become -."""
    return re.sub(r"[^A-Za-z0-9.]+", "-", text).strip("-")


@contextlib.contextmanager
def chromium_page(lab: JupyterLab, screenshots_dir: Path, name: str):
    """A LabPage in a new headless Chromium with an empty profile, JupyterLab loaded; always
    closed on exit."""
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
            lab_page = LabPage(lab, page, screenshots_dir, name)
            lab_page.load_lab()
            yield lab_page
        finally:
            context.close()
