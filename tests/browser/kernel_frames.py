"""Read Jupyter kernel websocket frames, as the page sees them, for the browser tests.

Also what counts as a problem in JupyterLab's server log, which carries the kernels' stderr.

Rules:
- Pure functions over the bytes or text of one frame (or one log excerpt): no I/O, no
  browser, no server; each is unit-tested in test_kernel_frames.py without the browser marker.
- A frame that cannot be read is None, never an exception: the page listens to every frame
  and a frame it does not understand must not break a test.
"""

from __future__ import annotations

import json
import re
import struct

#: The message parts a v1 binary frame starts with, in order (buffers follow; not read).
_V1_PARTS = ("channel", "header", "parent_header", "metadata", "content")


def decode_kernel_message(payload) -> dict | None:
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
        message = {"channel": parts[0].decode()}
        for name, part in zip(_V1_PARTS[1:], parts[1:], strict=False):
            message[name] = json.loads(part)
        return message
    except (ValueError, struct.error, IndexError, UnicodeDecodeError):
        return None


#: The comm target JupyterLab's widget manager opens whenever it connects to a kernel, to ask
#: for the widgets the kernel holds. Until the kernel has imported ipywidgets nothing answers,
#: and the kernel says so on stderr ("No such comm target registered: jupyter.widget.control",
#: then "No such comm: ID" for that comm's messages); the manager expects this and carries on.
WIDGET_CONTROL_TARGET = "jupyter.widget.control"


def widget_control_comm_id(message: dict) -> str | None:
    """The comm id, when `message` (sent by the page) opens the widget manager's control comm."""
    if (message.get("header") or {}).get("msg_type") != "comm_open":
        return None
    content = message.get("content") or {}
    if content.get("target_name") != WIDGET_CONTROL_TARGET:
        return None
    return content.get("comm_id")


def is_widget_control_noise(text: str, control_comm_ids) -> bool:
    """True for the kernel's stderr about the widget manager's control comm (see above)."""
    line = text.strip()
    if line == f"No such comm target registered: {WIDGET_CONTROL_TARGET}":
        return True
    return any(line == f"No such comm: {comm_id}" for comm_id in control_comm_ids)


def callback_error(message: dict, control_comm_ids=()) -> str | None:
    """The error a decoded kernel message reports outside a cell's own run, else None.

    That is an iopub `error`, or any iopub stderr, whose parent is not an execute_request: a
    widget callback (a click) or the kernel's comm handling (a click on a widget the kernel
    has closed gives "No such comm" on stderr). A cell's own output is left out; it is checked
    on the notebook model, which knows the raises-exception tags. The kernel's answer to the
    widget manager's control comm (`control_comm_ids`: the ids the page opened) is no error.
    """
    if message.get("channel") != "iopub":
        return None
    parent_type = (message.get("parent_header") or {}).get("msg_type")
    if parent_type == "execute_request":
        return None
    msg_type = (message.get("header") or {}).get("msg_type")
    content = message.get("content") or {}
    if msg_type == "error":
        return f"{parent_type}: {content.get('ename')}: {content.get('evalue')}"
    if msg_type == "stream" and content.get("name") == "stderr":
        text = content.get("text", "")
        if is_widget_control_noise(text, control_comm_ids):
            return None
        return f"{parent_type} stderr: {text[:500]}"
    return None


#: What marks a problem in JupyterLab's server log, which also carries its kernels' stderr
#: (a kernel logs a failed widget message there, not to the page): {pattern: what it means}.
SERVER_LOG_PROBLEMS = {
    r"Traceback \(most recent call last\)": "a Python traceback",
    r"No such comm|Comm not found": "a message for a widget the kernel no longer has",
    r"^\[E \d": "an error logged by the Jupyter server",
    r"\bERROR \|": "an error logged by the kernel",
    r"Exception in message handler": "a kernel message handler that raised",
}

#: Browser console text, at any level, that says a widget message met a closed comm.
COMM_ERROR_PATTERN = r"Comm not found|No such comm|comm .* (?:closed|disposed)"


def server_log_problems(text: str) -> list[str]:
    """The lines of a server log excerpt that report a problem, each with what it means."""
    problems = []
    for line in text.splitlines():
        for pattern, meaning in SERVER_LOG_PROBLEMS.items():
            if re.search(pattern, line):
                problems.append(f"{meaning}: {line.strip()[:300]}")
                break
    return problems
