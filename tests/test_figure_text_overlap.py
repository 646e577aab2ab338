"""No two texts of a figure the course draws overlap, and none leaves the figure.

The timelines are drawn from the notebooks' experiments recorded live here (00, 02, 06, 07's
twenty clients) and from every stepper scenario stepped to its end, also as the stepper widget
draws them after a learner's pauses (compress_idle_over); the ladders from the captures shipped
in handshake_lab/data. Every Text matplotlib draws counts: titles, tick and axis labels, legend
texts, call labels, the lengths written on cut pauses.
"""

from __future__ import annotations

import dataclasses

import pytest
from figure_recordings import (
    overlapping_texts,
    record_before_accept,
    record_closing,
    record_first_look,
    record_many_clients,
    stepper_recording,
)

from handshake_lab.capture import lost_segments_evidence
from handshake_lab.capture.shipped import load_shipped_capture
from handshake_lab.model.sequence_numbers import handshake_of
from handshake_lab.record.events import CALL, Recording
from handshake_lab.show.ladder_plot import plot_ladder
from handshake_lab.show.timeline_plot import (
    FIGURE_WIDTH,
    MAX_FIGURE_HEIGHT,
    TimeAxis,
    plot_timeline,
)
from handshake_lab.stepper.scenarios import SCENARIOS

pytestmark = pytest.mark.kernel

NOTEBOOK_RECORDINGS = {
    "00 first look": record_first_look,
    "02 before accept()": record_before_accept,
    "06 closing": record_closing,
    "07 twenty clients": record_many_clients,
}
#: What the stepper widget passes: a learner's pause longer than this is cut short.
STEPPER_IDLE = 0.2


@pytest.fixture(scope="module")
def recordings() -> dict[str, Recording]:
    made = {name: record() for name, record in NOTEBOOK_RECORDINGS.items()}
    made.update({f"stepper {key}": stepper_recording(key) for key in SCENARIOS})
    return made


def with_pauses(recording: Recording, seconds: float) -> Recording:
    """The recording as if a learner had paused `seconds` before each call (each click)."""
    calls = sorted(e.time_ns for e in recording.events if e.kind == CALL)
    pause_ns = round(seconds * 1e9)

    def later(time_ns: int) -> int:
        return time_ns + pause_ns * sum(1 for call in calls if call <= time_ns)

    events = [dataclasses.replace(e, time_ns=later(e.time_ns)) for e in recording.events]
    return Recording.from_events(events, recording.start_ns, later(recording.end_ns) + pause_ns)


def assert_no_overlap(figure, what: str) -> None:
    overlaps, outside = overlapping_texts(figure)
    assert not overlaps, f"{what}: {len(overlaps)} overlapping texts: {overlaps}"
    assert not outside, f"{what}: texts outside the figure: {outside}"


@pytest.mark.parametrize("name", [*NOTEBOOK_RECORDINGS, *(f"stepper {k}" for k in SCENARIOS)])
def test_timelines_of_real_recordings_have_no_overlapping_text(recordings, name):
    artists = plot_timeline(recordings[name], title=name)
    assert_no_overlap(artists.figure, name)
    width, height = artists.figure.get_size_inches()
    assert width == FIGURE_WIDTH and height <= MAX_FIGURE_HEIGHT, (width, height)


@pytest.mark.parametrize("key", list(SCENARIOS))
def test_the_stepper_timeline_after_a_learners_pauses_has_no_overlapping_text(recordings, key):
    paused = with_pauses(recordings[f"stepper {key}"], 3.0)
    artists = plot_timeline(paused, title=key, compress_idle_over=STEPPER_IDLE)
    assert artists.cuts, "each pause is cut short"
    assert_no_overlap(artists.figure, key)
    assert artists.figure.get_size_inches()[1] <= MAX_FIGURE_HEIGHT
    # Each pause is drawn no wider than the shortest busy stretch is at least: steps stay
    # readable however long the learner waits.
    axis = TimeAxis(paused, STEPPER_IDLE)
    narrowest_step = min(width for _, _, _, width in axis.pieces)
    assert all(cut.width <= narrowest_step for cut in artists.cuts)


def test_seven_rows_are_grouped_and_fit_the_screen(recordings):
    recording = recordings["07 twenty clients"]
    artists = plot_timeline(recording)
    clients = ["client", *(f"client {n}" for n in range(2, 21))]
    servers = [f"server {n}" for n in range(1, 21)]
    assert artists.lanes == ("listener", *clients, *servers)
    assert artists.figure.get_size_inches()[1] <= MAX_FIGURE_HEIGHT


@pytest.mark.parametrize("name", ["00 first look", "02 before accept()"])
def test_the_server_side_is_drawn_from_the_clients_connect(recordings, name):
    """The lane of the server's side starts at the client's connect() call, unsampled until
    the kernel's first answer, which shows it not accepted before accept() is called."""
    recording = recordings[name]
    artists = plot_timeline(recording)
    connect = recording.first(CALL, "client", "connect()")
    accept = recording.first(CALL, "listener", "accept()")
    (path,) = artists.not_sampled["server 1"].get_paths()
    per_unit = {"µs": 1e3, "ms": 1e6}[artists.unit]
    made_x = (connect.time_ns - recording.start_ns) / per_unit
    assert path.vertices[:, 0].min() == pytest.approx(made_x)
    first = artists.spans["server 1"][0]
    assert first.awaiting_accept and first.start_ns < accept.time_ns
    assert artists.bars["server 1"][0].get_hatch() is not None
    assert artists.lanes[:3] == ("listener", "client", "server 1")


SHIPPED_LADDERS = {
    "handshake": lambda: (list(handshake_of(load_shipped_capture().segments)), {}),
    "slow handshake": lambda: (
        list(handshake_of(load_shipped_capture(slow_motion=True).segments)),
        {"states": load_shipped_capture(slow_motion=True).states},
    ),
    **{
        f"lost {lose}": (
            lambda lose=lose: (
                lost_segments_evidence.load_recording(lose).segments,
                {"lost": lost_segments_evidence.load_recording(lose).lost},
            )
        )
        for lose in ("syn", "syn-ack", "ack")
    },
    "lost ack then data": lambda: (
        lost_segments_evidence.load_recording("ack", client_sends=b"hello\n").segments,
        {"lost": lost_segments_evidence.load_recording("ack", client_sends=b"hello\n").lost},
    ),
}


@pytest.mark.parametrize("name", list(SHIPPED_LADDERS))
def test_ladders_of_the_shipped_captures_have_no_overlapping_text(name):
    segments, options = SHIPPED_LADDERS[name]()
    artists = plot_ladder(segments, **options)
    figure = artists.axes.figure
    assert_no_overlap(figure, name)
    # No lane crosses a segment's label: each lies between the client's and the server's line.
    renderer = figure.canvas.get_renderer()
    client_x, server_x = (artists.axes.transData.transform((x, 0))[0] for x in (0.0, 1.0))
    for label in [*artists.arrow_labels, *artists.option_labels]:
        box = label.get_window_extent(renderer)
        assert client_x < box.x0 and box.x1 < server_x, label.get_text()
