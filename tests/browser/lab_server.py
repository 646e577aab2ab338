"""Run JupyterLab the way a learner does, for the browser tests: start it, check it is
ready, read its log, and stop it with nothing left behind.

It serves a throwaway copy of a notebooks folder, with throwaway Jupyter config, data and
runtime dirs, on a free port of 127.0.0.1.

Rules:
- Nothing sleeps to order things: every wait polls a condition until a named deadline
  (`poll_until`, the only such helper in this folder).
- JupyterLab runs in its own process group and is always stopped, even when a test fails:
  first politely (the REST shutdown), then SIGTERM and SIGKILL to the group, then any kernel
  it left behind (kernels run in sessions of their own; they are found by the connection
  file in our runtime dir).
- No browser here: the page is lab_page.py.
- Not named jupyterlab_server.py: this folder comes first on sys.path, and that is the
  name of a package JupyterLab itself imports.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

#: JupyterLab answering /api/status after launch (measured ~1.6 s here; cold disks are slower).
LAB_START_TIMEOUT = 60.0
#: JupyterLab exiting after the REST shutdown, before its process group is killed.
LAB_STOP_TIMEOUT = 10.0


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

    def lab_url(self) -> str:
        """The URL of JupyterLab with no document open, ignoring any saved workspace."""
        return f"{self.base_url}/lab?reset&token={self.token}"

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
        # The course's own settings (lab-settings/overrides.json, installed into this Python's
        # environment by tools/install_lab_settings.sh) turn the "get Jupyter news?" pop-up
        # off: the tests rely on them, as learners do, and check the pop-up never shows.
        user_settings = self.workdir / "jupyter-config" / "lab" / "user-settings" / "@jupyterlab"
        # Every cell in the page, in view or not, so that what the tests read (the page's text)
        # and the whole-notebook screenshots hold every cell. (The default windowing attaches
        # cells out of view only later; the cells' content is the same.)
        tracker = user_settings / "notebook-extension" / "tracker.jupyterlab-settings"
        tracker.parent.mkdir(parents=True)
        tracker.write_text(json.dumps({"windowingMode": "none"}))
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

    def log_size(self) -> int:
        """How many bytes the server log holds now: where a test's own part of it starts."""
        try:
            return self.log_path.stat().st_size
        except OSError:
            return 0

    def log_since(self, offset: int) -> str:
        """The server log from byte `offset` on: JupyterLab's lines and its kernels' stderr."""
        try:
            with open(self.log_path, "rb") as log:
                log.seek(offset)
                return log.read().decode(errors="replace")
        except OSError:
            return ""

    def shutdown_kernels(self) -> None:
        """End every session and kernel this server runs (REST), so that finished tests cost
        nothing; a session's end shuts its kernel down."""
        for kind in ("sessions", "kernels"):
            with contextlib.suppress(OSError, urllib.error.URLError, ValueError):
                with urllib.request.urlopen(
                    f"{self.base_url}/api/{kind}?token={self.token}", timeout=5
                ) as answer:
                    running = json.load(answer)
                for each in running:
                    request = urllib.request.Request(
                        f"{self.base_url}/api/{kind}/{each['id']}?token={self.token}",
                        method="DELETE",
                    )
                    urllib.request.urlopen(request, timeout=LAB_STOP_TIMEOUT).close()

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
