"""Drive a real JupyterLab in a real Chromium, for the widget tests in this folder.

What a learner sees is what the browser renders, so these tests start JupyterLab the way a
learner does (in a throwaway copy of notebooks/, with throwaway Jupyter config, data and
runtime dirs) and click the widgets in Debian's Chromium through Playwright's sync API.

Rules:
- Nothing sleeps to order things: every wait polls a condition until a named deadline.
- JupyterLab runs in its own process group and is always stopped, even when a test fails:
  first politely (the REST shutdown), then SIGTERM and SIGKILL to the group, then any kernel
  it left behind (kernels run in sessions of their own; they are found by the connection
  file in our runtime dir).
- Chromium gets a new, empty profile for every page; Playwright starts it detached and kills
  its process group on close.
- Checks read JupyterLab's own models through `window.jupyterapp` (exposed with
  --LabApp.expose_app_in_browser) and the kernel messages on the page's websockets, not
  pixels.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

#: JupyterLab answering /api/status after launch (measured ~1.6 s here; cold disks are slower).
LAB_START_TIMEOUT = 60.0
#: JupyterLab exiting after the REST shutdown, before its process group is killed.
LAB_STOP_TIMEOUT = 10.0
#: A notebook opening and its kernel reaching idle.
KERNEL_READY_TIMEOUT = 60.0
#: Run All on one course notebook; nbval allows 60 s per cell, a whole notebook gets this.
RUN_ALL_TIMEOUT = 240.0
#: A widget view appearing or updating after the kernel has answered.
WIDGET_TIMEOUT = 30.0
#: docmanager:save writing the notebook.
SAVE_TIMEOUT = 30.0
#: One strict nbval run over a saved notebook.
NBVAL_TIMEOUT = 600.0
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

#: The strict nbval flags `make test-notebooks` uses (the sanitize file is added per run).
NBVAL_FLAGS = ["--nbval", "--nbval-current-env", "--nbval-cell-timeout=60"]

#: Console errors that say nothing about the course, each with the reason it is harmless.
#: Everything else printed at level "error" fails the test. Empty: JupyterLab 4.6 with
#: ipywidgets 8.1 printed no console error in a clean run here (news and update checks are
#: switched off below, so nothing tries to reach the internet).
BENIGN_CONSOLE_ERRORS: list[tuple[re.Pattern[str], str]] = []


def find_chromium() -> str | None:
    """Debian's Chromium: /usr/bin/chromium, else `chromium` on PATH; None when absent."""
    preferred = Path("/usr/bin/chromium")
    if preferred.is_file() and os.access(preferred, os.X_OK):
        return str(preferred)
    return shutil.which("chromium")


def free_loopback_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (port 0, read back)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def poll_until(condition, timeout: float, what: str, interval: float = 0.1):
    """Call `condition` until it returns something truthy; AssertionError naming `what` if not."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


class JupyterLab:
    """A JupyterLab server on 127.0.0.1 serving a throwaway copy of a notebooks folder.

    Use as a context manager; `stop()` is idempotent and always leaves no process behind.
    """

    def __init__(self, notebooks_src: Path, workdir: Path) -> None:
        self.notebooks_src = Path(notebooks_src)
        self.workdir = Path(workdir)
        self.root_dir = self.workdir / "notebooks"
        self.runtime_dir = self.workdir / "jupyter-runtime"
        self.log_path = self.workdir / "jupyterlab.log"
        self.token = secrets.token_hex(24)
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None
        self.start_seconds: float | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def notebook_url(self, name: str) -> str:
        """The URL that opens `name` in full JupyterLab, ignoring any saved workspace."""
        return f"{self.base_url}/lab/tree/{name}?reset&token={self.token}"

    def path(self, name: str) -> Path:
        return self.root_dir / name

    def __enter__(self) -> JupyterLab:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc_info) -> None:
        self.stop()

    def start(self) -> None:
        shutil.copytree(
            self.notebooks_src,
            self.root_dir,
            ignore=shutil.ignore_patterns(".ipynb_checkpoints", "__pycache__"),
        )
        env = dict(os.environ)
        for var, sub in (
            ("JUPYTER_CONFIG_DIR", "jupyter-config"),
            ("JUPYTER_DATA_DIR", "jupyter-data"),
            ("IPYTHONDIR", "ipython"),
        ):
            env[var] = str(self.workdir / sub)
            (self.workdir / sub).mkdir()
        self.runtime_dir.mkdir()
        # No "get notified about Jupyter news?" toast over the screenshots, and no news fetch.
        notification = (
            self.workdir
            / "jupyter-config"
            / "lab"
            / "user-settings"
            / "@jupyterlab"
            / "apputils-extension"
            / "notification.jupyterlab-settings"
        )
        notification.parent.mkdir(parents=True)
        notification.write_text(json.dumps({"fetchNews": "false", "checkForUpdates": False}))
        env["JUPYTER_RUNTIME_DIR"] = str(self.runtime_dir)
        self.port = free_loopback_port()
        command = [
            sys.executable,
            "-m",
            "jupyterlab",
            "--no-browser",
            "--ip=127.0.0.1",
            f"--port={self.port}",
            # Fail fast on a port taken since we probed it, rather than serve on another.
            "--ServerApp.port_retries=0",
            f"--IdentityProvider.token={self.token}",
            f"--ServerApp.root_dir={self.root_dir}",
            "--LabApp.expose_app_in_browser=True",
            # No calls to the internet for updates (there is none here, nor on CI).
            "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
        ]
        if os.geteuid() == 0:
            command.append("--allow-root")
        started = time.monotonic()
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(
                command,
                cwd=self.root_dir,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        poll_until(self._ready, LAB_START_TIMEOUT, f"JupyterLab on port {self.port}")
        self.start_seconds = time.monotonic() - started

    def _ready(self) -> bool:
        if self.process is not None and self.process.poll() is not None:
            raise AssertionError(
                f"JupyterLab exited with code {self.process.returncode} before it was ready:\n"
                + self.log_tail()
            )
        try:
            with urllib.request.urlopen(
                f"{self.base_url}/api/status?token={self.token}", timeout=2
            ) as answer:
                return answer.status == 200
        except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
            return False

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no JupyterLab log)"
        return "\n".join(text.splitlines()[-lines:])

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is not None:
            if process.poll() is None:
                with contextlib.suppress(OSError, urllib.error.URLError):
                    request = urllib.request.Request(
                        f"{self.base_url}/api/shutdown?token={self.token}", method="POST"
                    )
                    urllib.request.urlopen(request, timeout=5).close()
                try:
                    process.wait(timeout=LAB_STOP_TIMEOUT)
                except subprocess.TimeoutExpired:
                    _kill_group(process.pid, signal.SIGTERM)
                    try:
                        process.wait(timeout=5)
                    except subprocess.TimeoutExpired:
                        _kill_group(process.pid, signal.SIGKILL)
                        process.wait(timeout=5)
            # Whatever else is left in JupyterLab's group (it made it, it goes with it).
            _kill_group(process.pid, signal.SIGKILL)
        self._kill_leftover_kernels()

    def _kill_leftover_kernels(self) -> None:
        """Kernels run in their own sessions; find ours by the connection file's directory."""
        marker = str(self.runtime_dir).encode()
        for entry in Path("/proc").glob("[0-9]*"):
            try:
                cmdline = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if marker in cmdline:
                pid = int(entry.name)
                with contextlib.suppress(OSError):
                    _kill_group(os.getpgid(pid), signal.SIGKILL)
                with contextlib.suppress(OSError):
                    os.kill(pid, signal.SIGKILL)


def _kill_group(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


# --- the page -------------------------------------------------------------------------------

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
        message = _decode_kernel_message(payload)
        if message is None or message.get("channel") != "iopub":
            return
        parent_type = (message.get("parent_header") or {}).get("msg_type")
        if parent_type == "execute_request":
            return  # a cell's own output: checked on the notebook model, which knows the tags
        msg_type = (message.get("header") or {}).get("msg_type")
        content = message.get("content") or {}
        if msg_type == "error":
            self.kernel_errors.append(
                f"{parent_type}: {content.get('ename')}: {content.get('evalue')}"
            )
        elif msg_type == "stream" and content.get("name") == "stderr":
            text = content.get("text", "")
            if "Traceback" in text:
                self.kernel_errors.append(f"{parent_type} stderr: {text[:500]}")

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


def _decode_kernel_message(payload) -> dict | None:
    """A Jupyter kernel websocket frame as a dict: JSON text, or the binary v1 protocol.

    v1.kernel.websocket.jupyter.org: a little-endian uint64 count n, n uint64 offsets, then the
    parts channel, header, parent_header, metadata, content, buffers...
    """
    try:
        if isinstance(payload, str):
            return json.loads(payload)
        data = bytes(payload)
        (count,) = struct.unpack_from("<Q", data, 0)
        offsets = list(struct.unpack_from(f"<{count}Q", data, 8)) + [len(data)]
        parts = [data[offsets[i] : offsets[i + 1]] for i in range(min(count, 5))]
        names = ("channel", "header", "parent_header", "metadata", "content")
        message = {"channel": parts[0].decode()}
        for name, part in zip(names[1:], parts[1:], strict=False):
            message[name] = json.loads(part)
        return message
    except (ValueError, struct.error, IndexError, UnicodeDecodeError):
        return None


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


def run_strict_nbval(notebook: Path, sanitize_file: Path) -> subprocess.CompletedProcess[str]:
    """Strict nbval (the flags `make test-notebooks` uses) on one notebook, in its folder."""
    command = [
        sys.executable,
        "-m",
        "pytest",
        *NBVAL_FLAGS,
        f"--nbval-sanitize-with={sanitize_file}",
        "-p",
        "no:cacheprovider",
        "-q",
        "--rootdir",
        str(notebook.parent),
        notebook.name,
    ]
    return subprocess.run(
        command,
        cwd=notebook.parent,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=NBVAL_TIMEOUT,
    )
