"""The recordings the course draws, made live the way its notebooks make them, and a check
that no two texts of a drawn figure overlap (used by tests/test_figure_text_overlap.py).

Each ``record_*`` function runs a notebook's experiment with the package's own helpers and
returns its Recording; ``stepper_recording`` steps a stepper scenario to its end. Nothing here
hard-codes what the kernel will say: the figures are drawn from what was recorded.
"""

from __future__ import annotations

import time

from handshake_lab.net.clients import close, connect, receive, send
from handshake_lab.net.server import LoopbackServer
from handshake_lab.record.events import Recording
from handshake_lab.record.recorder import Recorder
from handshake_lab.stepper.engine import Stepper
from handshake_lab.timeouts import KERNEL_TIMER_TIMEOUT, SHORT_TIMEOUT


def record_first_look() -> Recording:
    """Notebook 00: connect(), a sample, then accept()."""
    with Recorder() as recorder:
        with LoopbackServer(auto_accept=False) as server:
            client = connect(server.address)
            recorder.sample()
            accepted = server.accept()
            close(client)
            close(accepted)
    return recorder.recording


def record_before_accept() -> Recording:
    """Notebook 02: connect(), send() and a sample before accept(), then recv()."""
    with Recorder() as recorder, LoopbackServer(auto_accept=False) as server:
        client = connect(server.address)
        send(client, b"sent before accept()")
        recorder.sample()
        conn = server.accept(timeout=SHORT_TIMEOUT)
        receive(conn)
        close(client)
        close(conn)
    return recorder.recording


def record_closing() -> Recording:
    """Notebook 06: the client closes first, then the server; TIME-WAIT shows at the end."""
    with Recorder() as recorder, LoopbackServer(auto_accept=False) as server:
        client = connect(server.address)
        served = server.accept()
        recorder.sample()
        close(client)
        receive(served, timeout=SHORT_TIMEOUT)
        close(served)
        deadline = time.monotonic() + SHORT_TIMEOUT
        while time.monotonic() < deadline and "TIME_WAIT" not in recorder.recording.states_of(
            "client"
        ):
            recorder.sample()
    return recorder.recording


def record_many_clients(count: int = 20) -> Recording:
    """Notebook 07: `count` clients connect to a busy server, then it accepts them one by one."""
    with Recorder() as recorder, LoopbackServer(auto_accept=False) as server:
        clients = [connect(server.address) for _ in range(count)]
        recorder.sample()
        accepted = []
        for _ in clients:
            accepted.append(server.accept())
            time.sleep(0.002)  # the notebook's 2 ms of work per client
        for client in clients:
            close(client, reset=True)
        for conn in accepted:
            close(conn)
    return recorder.recording


def stepper_recording(scenario: str) -> Recording:
    """A stepper scenario stepped to its end, waiting out every blocked call."""
    with Stepper(scenario, capture_packets=False) as stepper:
        while not (snapshot := stepper.snapshot()).finished:
            if snapshot.pending and not stepper.available():
                stepper.wait(KERNEL_TIMER_TIMEOUT)
            else:
                stepper.step()
        return stepper.recording


def drawn_texts(figure) -> list:
    """Draw `figure` with Agg and return every Text artist it drew with some text: titles,
    axis and tick labels (only the ticks in view), legend texts, labels and annotations."""
    from unittest import mock

    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.text import Text

    drawn: dict[int, Text] = {}
    draw = Text.draw

    def recording_draw(text, renderer):
        if text.get_visible() and text.get_text().strip():
            drawn[id(text)] = text
        return draw(text, renderer)

    canvas = FigureCanvasAgg(figure)
    with mock.patch.object(Text, "draw", recording_draw):
        canvas.draw()
    return list(drawn.values())


def overlapping_texts(figure) -> tuple[list[tuple[str, str]], list[str]]:
    """The pairs of drawn texts whose boxes overlap, and the texts reaching outside the figure."""
    texts = drawn_texts(figure)
    renderer = figure.canvas.get_renderer()
    boxes = [(text.get_text(), text.get_window_extent(renderer)) for text in texts]
    overlaps = [
        (first[0], second[0])
        for index, first in enumerate(boxes)
        for second in boxes[index + 1 :]
        if first[1].overlaps(second[1])
    ]
    width, height = figure.canvas.get_width_height()
    outside = [
        text
        for text, box in boxes
        if box.x0 < -0.5 or box.y0 < -0.5 or box.x1 > width + 0.5 or box.y1 > height + 0.5
    ]
    return overlaps, outside
