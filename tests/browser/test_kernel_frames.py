"""kernel_frames: Jupyter kernel websocket frames read without a browser (no browser marker)."""

from __future__ import annotations

import json
import struct

import pytest
from kernel_frames import (
    callback_error,
    decode_kernel_message,
    server_log_problems,
    widget_control_comm_id,
)


def _v1_frame(channel: str, *json_parts: dict, buffers: tuple[bytes, ...] = ()) -> bytes:
    """A v1.kernel.websocket.jupyter.org frame: uint64 count, uint64 offsets, then the parts."""
    parts = [channel.encode()] + [json.dumps(part).encode() for part in json_parts]
    parts += list(buffers)
    offset = 8 * (1 + len(parts))
    offsets = []
    for part in parts:
        offsets.append(offset)
        offset += len(part)
    return struct.pack(f"<Q{len(parts)}Q", len(parts), *offsets) + b"".join(parts)


def _message(channel: str, msg_type: str, parent_type: str | None, content: dict) -> dict:
    return {
        "channel": channel,
        "header": {"msg_type": msg_type},
        "parent_header": {"msg_type": parent_type} if parent_type else {},
        "metadata": {},
        "content": content,
    }


def test_json_text_frame_is_read_as_is():
    message = _message("iopub", "status", "comm_msg", {"execution_state": "idle"})
    assert decode_kernel_message(json.dumps(message)) == message


def test_binary_v1_frame_is_read_part_by_part_and_buffers_are_left_out():
    header = {"msg_type": "comm_msg", "msg_id": "1"}
    parent = {"msg_type": "comm_msg"}
    content = {"data": {"method": "update"}}
    frame = _v1_frame("iopub", header, parent, {}, content, buffers=(b"\x00\xffraw",))
    assert decode_kernel_message(frame) == {
        "channel": "iopub",
        "header": header,
        "parent_header": parent,
        "metadata": {},
        "content": content,
    }


@pytest.mark.parametrize(
    "payload",
    [
        "not json",
        b"",
        b"\x01\x00\x00",  # shorter than the count
        struct.pack("<QQ", 3, 24),  # more offsets promised than sent
        _v1_frame("iopub")[:-1] + b"\xff",  # channel name not UTF-8
        _v1_frame("iopub", {"a": 1})[:-1],  # header JSON cut short
    ],
)
def test_unreadable_frame_is_none(payload):
    assert decode_kernel_message(payload) is None


def test_error_from_a_widget_callback_is_reported():
    message = _message("iopub", "error", "comm_msg", {"ename": "KeyError", "evalue": "'x'"})
    assert callback_error(message) == "comm_msg: KeyError: 'x'"


def test_stderr_traceback_from_a_widget_callback_is_reported_and_cut_at_500_chars():
    text = "Traceback (most recent call last):\n" + "x" * 1000
    message = _message("iopub", "stream", "comm_msg", {"name": "stderr", "text": text})
    assert callback_error(message) == f"comm_msg stderr: {text[:500]}"


def test_no_such_comm_on_stderr_after_a_click_is_reported():
    # What a double click on a step button whose widget the kernel had closed gave.
    text = "No such comm: b2b1307a092a456991586dc3c8d7a35c\n"
    message = _message("iopub", "stream", "comm_msg", {"name": "stderr", "text": text})
    assert callback_error(message) == f"comm_msg stderr: {text}"


def _control_open(comm_id: str) -> dict:
    content = {"comm_id": comm_id, "target_name": "jupyter.widget.control", "data": {}}
    return _message("shell", "comm_open", None, content)


def test_the_widget_managers_control_comm_is_recognised_by_its_target():
    assert widget_control_comm_id(_control_open("c1")) == "c1"
    other = _control_open("c2")
    other["content"]["target_name"] = "jupyter.widget"
    assert widget_control_comm_id(other) is None


@pytest.mark.parametrize(
    "text",
    ["No such comm target registered: jupyter.widget.control\n", "No such comm: c1\n"],
)
def test_the_kernels_answer_to_the_control_comm_is_not_an_error(text):
    message = _message("iopub", "stream", "comm_msg", {"name": "stderr", "text": text})
    assert callback_error(message, {"c1"}) is None
    # The same text about any other comm is one.
    if "c1" in text:
        assert callback_error(message, {"c9"}) == f"comm_msg stderr: {text}"


@pytest.mark.parametrize(
    "message",
    [
        # A cell's own error: checked on the notebook model, which knows raises-exception.
        _message("iopub", "error", "execute_request", {"ename": "E", "evalue": "v"}),
        _message("iopub", "stream", "comm_msg", {"name": "stdout", "text": "Traceback"}),
        _message("iopub", "status", "comm_msg", {"execution_state": "idle"}),
        _message("shell", "error", "comm_msg", {"ename": "E", "evalue": "v"}),
        {"channel": "iopub"},
    ],
)
def test_everything_else_is_not_a_callback_error(message):
    assert callback_error(message) is None


def test_a_binary_error_frame_reads_through_to_its_report():
    frame = _v1_frame(
        "iopub",
        {"msg_type": "error"},
        {"msg_type": "comm_msg"},
        {},
        {"ename": "ValueError", "evalue": "bad step"},
    )
    assert callback_error(decode_kernel_message(frame)) == "comm_msg: ValueError: bad step"


#: Lines a clean run of JupyterLab 4.6 wrote to its log here: none is a problem.
CLEAN_SERVER_LOG = """\
[I 2026-12-02 05:32:35.924 ServerApp] Serving notebooks from local directory: /tmp/x/notebooks
[W 2026-12-02 05:32:43.758 ServerApp] Notebook 03-step-through.ipynb is not trusted
[I 2026-12-02 05:32:45.548 ServerApp] Kernel started: 4b205e5f-73e5-4e4c-85ed-69042d3d3228
[IPKernelApp] WARNING | Kernel is running over TCP without encryption.
[W 2026-12-02 05:32:46.579 ServerApp] The websocket_ping_timeout (90000) cannot be longer
"""


def test_a_clean_server_log_has_no_problems():
    assert server_log_problems(CLEAN_SERVER_LOG) == []


@pytest.mark.parametrize(
    "line",
    [
        "Traceback (most recent call last):",
        "No such comm: b2b1307a092a456991586dc3c8d7a35c",
        "Error: Comm not found for comm id 1234",
        "[E 2026-12-02 05:33:15.949 ServerApp] Uncaught exception GET /api/kernels",
        "[IPKernelApp] ERROR | Exception in message handler:",
    ],
)
def test_each_kind_of_problem_line_is_reported_once_with_its_meaning(line):
    problems = server_log_problems(CLEAN_SERVER_LOG + line + "\n")
    assert len(problems) == 1 and problems[0].endswith(line), problems
