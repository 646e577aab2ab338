"""Read Jupyter kernel websocket frames, as the page sees them, for the browser tests.

Rules:
- Pure functions over the bytes or text of one frame: no I/O, no browser, no server; each
  is unit-tested in test_kernel_frames.py without the browser marker.
- A frame that cannot be read is None, never an exception: the page listens to every frame
  and a frame it does not understand must not break a test.
"""

from __future__ import annotations

import json
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


def callback_error(message: dict) -> str | None:
    """The error a decoded kernel message reports outside a cell's own run, else None.

    That is an iopub `error`, or iopub stderr carrying a traceback, whose parent is not an
    execute_request: a widget callback (a click). A cell's own output is left out; it is
    checked on the notebook model, which knows the raises-exception tags.
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
        if "Traceback" in text:
            return f"{parent_type} stderr: {text[:500]}"
    return None
