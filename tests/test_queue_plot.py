"""The accept-queue figure's structure (levels, rows, SYN markers, legend); no text overlaps."""

from __future__ import annotations

import time

import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from handshake_lab.kernel.tcp_info import AcceptQueue, accept_queue, syn_retransmits
from handshake_lab.model.states import TcpState
from handshake_lab.net.clients import close, connect, finish_connect, start_connect
from handshake_lab.net.server import LoopbackServer
from handshake_lab.record.events import CALL, RETURN, Event, Recording
from handshake_lab.record.recorder import Recorder
from handshake_lab.show.queue_plot import (
    ACCEPT_LABEL,
    ANSWERED_LABEL,
    DROPPED_LABEL,
    QUEUE_LABEL,
    QueueArtists,
    plot_accept_queue,
)
from handshake_lab.timeouts import KERNEL_TIMER_TIMEOUT, SHORT_TIMEOUT, poll_until

MS = 1_000_000
SECOND = 1_000 * MS
state = Event.of_state


@pytest.fixture(scope="module", autouse=True)
def fonts_loaded():
    """matplotlib keeps its font files open once it has drawn text: open them before the
    per-test leak check starts counting file descriptors."""
    _draw(plot_accept_queue(full_queue_recording(), client="client 3", title="µs").figure)


def full_queue_recording() -> Recording:
    """listen(1): two clients fill the queue, client 3's SYN is dropped twice, accept() at 1 s."""
    syn = 500 * MS  # client 3's connect() starts here
    events = [
        Event(0, CALL, "listener", "listen(1)", "server"),
        state(1 * MS, "listener", TcpState.LISTEN, queue=AcceptQueue(0, 1)),
        Event(200 * MS, CALL, "client", "connect()", "client"),
        Event(200 * MS + 50, RETURN, "client", "connect()", "client", "local port 1"),
        state(201 * MS, "client", TcpState.ESTABLISHED),
        state(201 * MS, "listener", TcpState.LISTEN, queue=AcceptQueue(1, 1)),
        Event(400 * MS, CALL, "client 2", "connect()", "client"),
        Event(400 * MS + 50, RETURN, "client 2", "connect()", "client", "local port 2"),
        state(401 * MS, "client 2", TcpState.ESTABLISHED),
        state(401 * MS, "listener", TcpState.LISTEN, queue=AcceptQueue(2, 1)),
        Event(syn, CALL, "client 3", "connect() started", "client"),
        state(syn + MS, "client 3", TcpState.SYN_SENT),
        Event(syn + SECOND + 10 * MS, CALL, "listener", "accept()", "server"),
        Event(syn + SECOND + 11 * MS, RETURN, "listener", "accept()", "server", "peer port 1"),
        state(syn + SECOND + 12 * MS, "listener", TcpState.LISTEN, queue=AcceptQueue(1, 1)),
        state(syn + 2 * SECOND + 1 * MS, "client 3", TcpState.ESTABLISHED),
        state(syn + 2 * SECOND + 1 * MS, "listener", TcpState.LISTEN, queue=AcceptQueue(2, 1)),
        Event(syn + 2 * SECOND + 200 * MS, CALL, "client", "close()", "client"),
        state(syn + 2 * SECOND + 201 * MS, "client", TcpState.TIME_WAIT),
    ]
    return Recording.from_events(events, 0, syn + 2 * SECOND + 300 * MS)


def _draw(figure) -> object:
    canvas = FigureCanvasAgg(figure)
    canvas.draw()
    return canvas.get_renderer()


def drawn_texts(artists: QueueArtists) -> list[tuple[str, object]]:
    """Every text the figure draws, with its box on the canvas: ticks inside the view,
    axis labels, title, legend entries and any free text."""
    renderer = _draw(artists.figure)
    ax = artists.ax
    texts = [ax.title, ax.xaxis.label, ax.yaxis.label, *ax.texts, *artists.legend.get_texts()]
    for axis, (low, high) in ((ax.xaxis, ax.get_xlim()), (ax.yaxis, ax.get_ylim())):
        low, high = min(low, high), max(low, high)
        for location, label in zip(axis.get_ticklocs(), axis.get_ticklabels(), strict=True):
            if low <= location <= high:
                texts.append(label)
    return [
        (text.get_text(), text.get_window_extent(renderer))
        for text in texts
        if text.get_visible() and text.get_text().strip()
    ]


def overlapping_texts(artists: QueueArtists) -> list[tuple[str, str]]:
    boxes = drawn_texts(artists)
    return [
        (first_text, second_text)
        for index, (first_text, first_box) in enumerate(boxes)
        for second_text, second_box in boxes[index + 1 :]
        if first_box.overlaps(second_box)
    ]


def test_the_queue_line_follows_the_sampled_lengths_and_names_the_full_level():
    ax = Figure().add_subplot()
    artists = plot_accept_queue(full_queue_recording(), client="client 3", ax=ax, title="t")
    assert artists.ax is ax and artists.figure is ax.get_figure()
    assert [length for _, length in artists.queue_levels] == [0, 1, 2, 1, 2]
    assert artists.full_length == 2
    labels = [label.get_text() for label in ax.get_yticklabels()]
    assert labels == [
        "0 waiting",
        "1 waiting",
        "2 waiting (full)",
        "client",
        "client 2",
        "client 3",
    ]
    assert list(ax.get_yticks())[:3] == [0, 1, 2]
    # x is counted from client 3's first SYN: the fill comes before it
    assert [round(x, 3) for x, _ in artists.queue_levels][:3] == [-0.499, -0.299, -0.099]
    assert ax.get_xlabel() == "seconds after client 3's first SYN"


def test_client_rows_sit_above_the_queue_with_their_state_bars():
    ax = Figure().add_subplot()
    artists = plot_accept_queue(full_queue_recording(), client="client 3", ax=ax)
    assert artists.client_rows == ("client", "client 2", "client 3")
    names = [label.get_text() for label in ax.get_yticklabels()]
    ticks = dict(zip(names, ax.get_yticks(), strict=True))
    assert ticks["client"] > ticks["client 2"] > ticks["client 3"] > ticks["2 waiting (full)"]
    assert [len(artists.bars[lane]) for lane in artists.client_rows] == [1, 1, 2]
    # nothing after the experiment's first close() is drawn (client's TIME_WAIT)
    colours = {tuple(bar.get_facecolor()[0]) for bars in artists.bars.values() for bar in bars}
    assert len(colours) == 2  # SYN-SENT and ESTABLISHED


def test_dropped_syns_and_the_one_that_got_through_are_marked_on_the_clients_row():
    retry = 500 * MS + SECOND + 5 * MS
    artists = plot_accept_queue(
        full_queue_recording(),
        client="client 3",
        retransmissions_ns=[retry, 500 * MS + 3 * SECOND],  # the second is after it connected
        ax=Figure().add_subplot(),
    )
    assert [(round(x, 3), through) for x, through in artists.syns] == [
        (0.0, False),
        (1.005, False),
        (2.001, True),
    ]
    assert len(artists.syn_markers) == 3 and len(artists.accept_markers) == 1
    (accept_marker,) = artists.accept_markers
    assert accept_marker.get_ydata()[0] == 2  # on the full queue it took a connection from
    legend = [text.get_text() for text in artists.legend.get_texts()]
    assert legend[:4] == [QUEUE_LABEL, ACCEPT_LABEL, DROPPED_LABEL, ANSWERED_LABEL]
    assert "client SYN-SENT (SYN_SENT)" in legend and "client ESTABLISHED" in legend
    assert repr(artists) == (
        "<accept queue: full at 2; client 3: 2 SYNs dropped, 1 got through; 1 accept()>"
    )


def test_no_two_texts_overlap_in_the_default_figure_or_a_small_one():
    artists = plot_accept_queue(
        full_queue_recording(),
        client="client 3",
        retransmissions_ns=[500 * MS + SECOND + 5 * MS],
        title="listen(1): the queue fills, client 3's SYNs are dropped until accept()",
    )
    assert len(drawn_texts(artists)) > 15
    assert overlapping_texts(artists) == []
    small = Figure(figsize=(6.4, 3.6), layout="constrained").add_subplot()
    assert (
        overlapping_texts(plot_accept_queue(full_queue_recording(), client="client 3", ax=small))
        == []
    )


def test_the_check_itself_finds_overlapping_text():
    artists = plot_accept_queue(full_queue_recording(), client="client 3")
    artists.ax.text(0.0, 0.0, "on top of the 0 tick", transform=artists.ax.transAxes, ha="right")
    artists.ax.text(0.0, 0.0, "on top of the 0 tick", transform=artists.ax.transAxes, ha="right")
    assert overlapping_texts(artists)


def test_bad_input_says_what_to_do():
    recording = full_queue_recording()
    with pytest.raises(ValueError, match="client lanes are"):
        plot_accept_queue(recording, client="client 9")
    with pytest.raises(ValueError, match="record the experiment with a Recorder"):
        plot_accept_queue(recording, client="client 3", listener="listener 2")


@pytest.mark.kernel
def test_a_real_recording_of_a_full_queue_draws_without_overlap():
    """listen(0): one connection fills the queue; the next SYN is dropped until accept()."""
    with Recorder() as recorder, LoopbackServer(backlog=0, auto_accept=False) as server:
        first = connect(server.address)
        waiting = start_connect(server.address)
        try:
            assert poll_until(lambda: syn_retransmits(waiting) >= 1, timeout=KERNEL_TIMER_TIMEOUT)
            retransmitted = time.monotonic_ns()
            assert accept_queue(server.listener).length == 1
            close(server.accept(timeout=SHORT_TIMEOUT))
            finish_connect(waiting, timeout=KERNEL_TIMER_TIMEOUT)
            recorder.sample()
        finally:
            close(first)
            close(waiting)
    artists = plot_accept_queue(
        recorder.recording, client="client 2", retransmissions_ns=[retransmitted]
    )
    assert artists.full_length == 1
    assert [through for _, through in artists.syns] == [False, False, True]
    assert 1 in [length for _, length in artists.queue_levels]
    assert len(artists.accept_markers) == 1
    assert overlapping_texts(artists) == []
