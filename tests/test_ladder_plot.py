"""The ladder diagram's structure: lanes, one arrow per segment, labels and states."""

from __future__ import annotations

import dataclasses
import subprocess
import sys

import pytest
from matplotlib.figure import Figure

from handshake_lab.capture.shipped import load_shipped_capture
from handshake_lab.model.tcp_model import Connection
from handshake_lab.show.ladder_plot import plot_ladder
from handshake_lab.timeouts import SHORT_TIMEOUT


def handshake_segments():
    connection = Connection(2**32 - 1, 500)
    connection.listen()
    connection.connect()
    return connection.wire


def test_one_arrow_per_segment_between_two_lanes():
    ax = Figure().add_subplot()
    artists = plot_ladder(handshake_segments(), ax=ax)
    assert artists.axes is ax
    assert len(artists.lanes) == 2
    assert [label.get_text().split("\n")[0] for label in artists.lane_labels] == [
        "client",
        "server",
    ]
    assert len(artists.arrows) == len(artists.arrow_labels) == 3
    texts = [label.get_text() for label in artists.arrow_labels]
    assert texts[0].startswith(f"SYN\nseq={2**32 - 1}\n")
    assert texts[1].startswith("SYN+ACK\nseq=500 ack=0\n")
    assert texts[1].endswith("relative to ISN: seq=0 ack=1")
    assert texts[2].endswith("relative to ISN: seq=1 ack=1")
    # Arrows alternate direction: client (x=0) to server (x=1) and back, time going down.
    starts = [arrow.xyann for arrow in artists.arrows]
    ends = [arrow.xy for arrow in artists.arrows]
    assert [(start[0], end[0]) for start, end in zip(starts, ends, strict=True)] == [
        (0.0, 1.0),
        (1.0, 0.0),
        (0.0, 1.0),
    ]
    assert all(end[1] > start[1] for start, end in zip(starts, ends, strict=True))
    assert ax.get_ylim()[0] > ax.get_ylim()[1]  # inverted: time runs downwards


def test_states_from_the_model_are_italic():
    artists = plot_ladder(handshake_segments(), ax=Figure().add_subplot())
    assert [label.get_text() for label in artists.state_labels] == [
        "SYN-SENT",
        "SYN-RECEIVED",
        "ESTABLISHED",
        "SYN-RECEIVED",
        "ESTABLISHED",
        "ESTABLISHED",
    ]
    assert {label.get_style() for label in artists.state_labels} == {"italic"}


def test_measured_states_are_upright():
    recording = load_shipped_capture(slow_motion=True)
    artists = plot_ladder(recording.segments, ax=Figure().add_subplot(), states=recording.states)
    assert len(artists.arrows) == len(recording.segments)
    first_rows = [(label.get_text(), label.get_style()) for label in artists.state_labels[:4]]
    assert first_rows == [
        ("SYN-SENT", "normal"),
        ("SYN-RECEIVED", "normal"),
        ("ESTABLISHED", "normal"),
        ("SYN-RECEIVED", "normal"),
    ]
    assert artists.time_labels[1].get_text().endswith(" s")


def test_without_ax_a_new_figure_is_made_and_empty_input_is_refused():
    artists = plot_ladder(handshake_segments())
    assert isinstance(artists.axes.figure, Figure)
    assert len(artists.time_labels) == 3
    assert plot_ladder(handshake_segments(), show_times=False).time_labels == []
    with pytest.raises(ValueError, match="capture a handshake first"):
        plot_ladder([])


def test_importing_the_module_does_not_import_matplotlib():
    code = "import sys, handshake_lab.show.ladder_plot; print('matplotlib' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=SHORT_TIMEOUT
    )
    assert result.stdout.strip() == "False", result.stderr


def _overlapping_texts(artists) -> list[tuple[str, str]]:
    """Pairs of the ladder's texts whose drawn boxes overlap (rendered with Agg)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    figure = artists.axes.figure
    FigureCanvasAgg(figure).draw()
    renderer = figure.canvas.get_renderer()
    texts = [
        *artists.lane_labels,
        *artists.arrow_labels,
        *artists.option_labels,
        *artists.state_labels,
        *artists.time_labels,
    ]
    boxes = [(text.get_text(), text.get_window_extent(renderer)) for text in texts]
    return [
        (first[0], second[0])
        for index, first in enumerate(boxes)
        for second in boxes[index + 1 :]
        if first[1].overlaps(second[1])
    ]


def test_the_syn_and_syn_ack_show_their_real_options_without_overlapping_text():
    from handshake_lab.model.sequence_numbers import handshake_of

    segments = list(handshake_of(load_shipped_capture().segments))
    artists = plot_ladder(segments)
    texts = [label.get_text() for label in artists.option_labels]
    assert len(texts) == 2, texts  # the SYN's and the SYN+ACK's; the ACK carries none to show
    syn, syn_ack, _ = segments
    for text, segment in zip(texts, (syn, syn_ack), strict=True):
        assert text.startswith("options: MSS ")
        tsval, tsecr = dict(segment.options)["TS"]
        assert f"TS val={tsval} ecr={tsecr}" in text
        assert "SACK_PERM" in text and f"WS {dict(segment.options)['WS']}" in text
    assert _overlapping_texts(artists) == []
    assert plot_ladder(segments, show_options=False).option_labels == []


def test_labels_fit_between_the_lanes_on_an_opaque_box():
    """No lane crosses a label, and an arrow passes behind its label, not through its text."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    segments = handshake_segments()
    segments[2] = dataclasses.replace(segments[2], payload_len=65535)  # the widest first line
    artists = plot_ladder(segments)
    canvas = FigureCanvasAgg(artists.axes.figure)
    canvas.draw()
    left, right = (artists.axes.transData.transform((x, 0))[0] for x in (0.0, 1.0))
    for label in artists.arrow_labels:
        box = label.get_window_extent(canvas.get_renderer())
        assert left < box.x0 and box.x1 < right, label.get_text()
        patch = label.get_bbox_patch()
        assert patch.get_alpha() in (None, 1) and patch.get_facecolor()[:3] == (1.0, 1.0, 1.0)
        assert label.get_zorder() > artists.arrows[0].get_zorder()
    assert artists.arrow_labels[2].get_text().startswith("ACK  len=65535\n")
    assert _overlapping_texts(artists) == []


def test_a_saved_syn_is_drawn_alone():
    syn = load_shipped_capture().segments[0]
    artists = plot_ladder([syn], show_times=False)
    assert len(artists.arrows) == 1 and len(artists.option_labels) == 1
    assert [label.get_text().split("\n")[0] for label in artists.arrow_labels] == ["SYN"]
    assert _overlapping_texts(artists) == []


def test_segments_a_second_in_and_microseconds_apart_say_how_far_apart_they_are():
    from handshake_lab.show.ladder_plot import _time_text

    assert _time_text(1.009002, 1.009001) == "+1.009 s\n(+1 µs)"
    assert _time_text(1.009002, 0.000012) == "+1.009 s"
    assert _time_text(0.000012, 0.0) == "+12 µs"
