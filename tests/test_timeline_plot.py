"""The timeline plot's structure: lanes, one bar per state span, legend, call markers, units."""

from __future__ import annotations

import subprocess
import sys

import pytest
from matplotlib.figure import Figure

from handshake_lab.kernel.tcp_info import AcceptQueue
from handshake_lab.model.states import TcpState
from handshake_lab.record.events import CALL, ERROR, RETURN, Event, Recording
from handshake_lab.show.timeline_plot import (
    MAX_FIGURE_HEIGHT,
    NOT_ACCEPTED_HATCH,
    NOT_ACCEPTED_LABEL,
    NOT_SAMPLED_HATCH,
    NOT_SAMPLED_LABEL,
    TimelineArtists,
    display_name,
    lane_order,
    plot_timeline,
    state_colour,
    state_label,
    timeline_png,
)
from handshake_lab.timeouts import SHORT_TIMEOUT

MS = 1_000_000  # nanoseconds
state = Event.of_state


@pytest.fixture(scope="module", autouse=True)
def fonts_loaded():
    """matplotlib keeps its font files open once it has drawn text: open them before the
    per-test leak check starts counting file descriptors."""
    timeline_png(handshake_before_accept(), title="µs")
    timeline_png(Recording.from_events([state(0, "client", TcpState.SYN_SENT)], 0, 10))


def handshake_before_accept() -> Recording:
    """connect() returns, the server side is ESTABLISHED 'not accepted', accept() comes later."""
    events = [
        Event(0 * MS, CALL, "listener", "listen(1)", "server"),
        Event(1 * MS, RETURN, "listener", "listen(1)", "server"),
        state(1 * MS, "listener", TcpState.LISTEN, queue=AcceptQueue(0, 1)),
        Event(2 * MS, CALL, "client", "connect()", "client"),
        state(2 * MS + 10, "client", TcpState.SYN_SENT),
        state(3 * MS, "server 1", TcpState.SYN_RECEIVED, accepted=False),
        Event(4 * MS, RETURN, "client", "connect()", "client", "local port 50000"),
        state(4 * MS, "client", TcpState.ESTABLISHED),
        state(4 * MS, "server 1", TcpState.ESTABLISHED, accepted=False),
        state(4 * MS, "listener", TcpState.LISTEN, queue=AcceptQueue(1, 1)),
        Event(7 * MS, CALL, "listener", "accept()", "server"),
        Event(8 * MS, RETURN, "listener", "accept()", "server", "peer port 50000"),
        state(8 * MS, "server 1", TcpState.ESTABLISHED),
        Event(9 * MS, CALL, "client 2", "connect()", "client"),
        state(9 * MS, "client 2", TcpState.SYN_SENT),
        Event(9 * MS + 5, CALL, "client", "send()", "client"),
        Event(9 * MS + 7, ERROR, "client", "send()", "client", "BrokenPipeError: [Errno 32]"),
    ]
    return Recording.from_events(events, 0, 10 * MS)


def test_one_lane_per_socket_in_recording_order():
    recording = handshake_before_accept()
    ax = Figure().add_subplot()
    artists = plot_timeline(recording, ax=ax, title="before accept()")
    assert isinstance(artists, TimelineArtists)
    assert artists.ax is ax and artists.figure is ax.get_figure()
    assert artists.lanes == ("listener", "client", "server 1", "client 2")
    assert [label.get_text() for label in ax.get_yticklabels()] == list(artists.lanes)
    assert list(ax.get_yticks()) == [0, 1, 2, 3]
    assert ax.get_ylim()[0] > ax.get_ylim()[1]  # first lane on top
    assert ax.get_title() == "before accept()"
    assert ax.get_xlabel() == "time since recording started (ms)"
    assert artists.unit == "ms"


def test_one_bar_per_state_span_coloured_by_state():
    recording = handshake_before_accept()
    artists = plot_timeline(recording, ax=Figure().add_subplot())
    for lane in artists.lanes:
        lane_spans = [span for span in recording.state_spans() if span.lane == lane]
        assert len(artists.bars[lane]) == len(lane_spans) == len(artists.spans[lane])
    assert [span.state for span in artists.spans["server 1"]] == [
        TcpState.SYN_RECEIVED,
        TcpState.ESTABLISHED,
        TcpState.ESTABLISHED,
    ]
    established = artists.bars["client"][1]
    assert tuple(established.get_facecolor()[0][:3]) == pytest.approx(
        tuple(int(state_colour("ESTABLISHED")[i : i + 2], 16) / 255 for i in (1, 3, 5))
    )
    # Each bar spans its state's time, in ms from the start of the recording.
    (path,) = established.get_paths()
    assert (path.vertices[:, 0].min(), path.vertices[:, 0].max()) == pytest.approx((4.0, 10.0))


def test_not_accepted_spans_are_hatched_and_the_rest_are_not():
    artists = plot_timeline(handshake_before_accept(), ax=Figure().add_subplot())
    hatches = [
        (span.accepted, bar.get_hatch())
        for span, bar in zip(artists.spans["server 1"], artists.bars["server 1"], strict=True)
    ]
    assert hatches == [(False, NOT_ACCEPTED_HATCH), (False, NOT_ACCEPTED_HATCH), (True, None)]
    assert all(bar.get_hatch() is None for bar in artists.bars["client"])


def test_a_connection_gone_before_anyone_accepted_it_is_not_hatched_once_gone():
    events = [
        state(0, "server 1", TcpState.ESTABLISHED, accepted=False),
        state(MS, "server 1", TcpState.CLOSED, accepted=False, gone=True),
    ]
    artists = plot_timeline(Recording.from_events(events, 0, 2 * MS), ax=Figure().add_subplot())
    assert [bar.get_hatch() for bar in artists.bars["server 1"]] == [NOT_ACCEPTED_HATCH, None]


def test_legend_names_each_state_present_once_rfc_then_linux():
    artists = plot_timeline(handshake_before_accept(), ax=Figure().add_subplot())
    texts = [text.get_text() for text in artists.legend.get_texts()]
    assert texts == [
        "LISTEN",
        "SYN-SENT (SYN_SENT)",
        "SYN-RECEIVED (SYN_RECV)",
        "ESTABLISHED",
        NOT_ACCEPTED_LABEL,
        NOT_SAMPLED_LABEL,
        "call made",
        "call returned",
        "still blocked",
    ]


@pytest.mark.parametrize(
    ("name", "label"),
    [
        ("SYN_RECV", "SYN-RECEIVED (SYN_RECV)"),
        ("FIN_WAIT1", "FIN-WAIT-1 (FIN_WAIT1)"),
        ("CLOSE", "CLOSED (CLOSE)"),
        ("TIME_WAIT", "TIME-WAIT (TIME_WAIT)"),
        ("ESTABLISHED", "ESTABLISHED"),
        ("NO_SUCH_STATE", "NO_SUCH_STATE"),
    ],
)
def test_state_labels(name, label):
    assert state_label(name) == label


def test_labels_and_colours_take_a_state_as_well_as_its_name():
    for tcp_state in TcpState:
        assert state_label(tcp_state) == state_label(tcp_state.linux_name)
        assert state_colour(tcp_state) == state_colour(tcp_state.linux_name)


def test_every_state_has_its_own_colour():
    names = [
        "LISTEN",
        "SYN_SENT",
        "SYN_RECV",
        "ESTABLISHED",
        "FIN_WAIT1",
        "FIN_WAIT2",
        "CLOSING",
        "TIME_WAIT",
        "CLOSE_WAIT",
        "LAST_ACK",
        "CLOSE",
    ]
    assert len({state_colour(name) for name in names}) == len(names)


def test_each_call_has_a_marker_at_call_and_return_and_a_label():
    recording = handshake_before_accept()
    artists = plot_timeline(recording, ax=Figure().add_subplot())
    assert len(artists.call_markers) == len(recording.call_spans()) == 5
    by_name = {(m.call.lane, m.call.name): m for m in artists.call_markers}
    connect = by_name[("client", "connect()")]
    assert connect.start.get_xdata()[0] == pytest.approx(2.0)
    assert connect.end.get_xdata()[0] == pytest.approx(4.0)
    assert connect.end.get_marker() == "|"
    assert connect.label.get_text() == "connect()"
    assert connect.start.get_ydata()[0] == artists.lanes.index("client")
    accept = by_name[("listener", "accept()")]
    assert accept.start.get_xdata()[0] > connect.end.get_xdata()[0]  # connect() returned first
    assert by_name[("client", "send()")].end.get_marker() == "x"
    assert by_name[("client", "send()")].label.get_text() == "send() raised"


def test_a_call_still_blocked_runs_to_the_end_with_an_open_marker():
    artists = plot_timeline(handshake_before_accept(), ax=Figure().add_subplot())
    (blocked,) = [m for m in artists.call_markers if m.call.return_ns is None]
    assert blocked.call.lane == "client 2"
    assert blocked.end.get_xdata()[0] == pytest.approx(10.0)
    assert blocked.end.get_markerfacecolor() == "white"
    assert blocked.label.get_text() == "connect() still blocked"


def test_short_recordings_are_drawn_in_microseconds():
    events = [
        state(100_000, "client", TcpState.SYN_SENT),
        state(400_000, "client", TcpState.CLOSED),
    ]
    artists = plot_timeline(Recording.from_events(events, 0, 1_500_000), ax=Figure().add_subplot())
    assert artists.unit == "µs"
    assert artists.ax.get_xlabel() == "time since recording started (µs)"
    assert artists.ax.get_xlim()[1] > 1_500  # the recording's end, in µs


def test_an_empty_recording_draws_an_empty_axes():
    artists = plot_timeline(Recording.from_events([], 0, 0))
    assert artists.lanes == () and artists.legend is None
    assert isinstance(artists.figure, Figure)
    assert timeline_png(Recording.from_events([], 0, 0)).startswith(b"\x89PNG\r\n\x1a\n")


def test_a_new_figure_when_no_axes_and_a_stable_repr():
    artists = plot_timeline(handshake_before_accept())
    assert isinstance(artists.figure, Figure)
    assert artists.figure.axes == [artists.ax]
    assert repr(artists) == "<timeline: listener, client, server 1, client 2; 5 calls>"
    assert artists._repr_png_().startswith(b"\x89PNG")


def test_json_round_trip_draws_the_same():
    recording = handshake_before_accept()
    again = Recording.from_json(recording.to_json())
    first, second = (plot_timeline(r, ax=Figure().add_subplot()) for r in (recording, again))
    assert {lane: len(bars) for lane, bars in first.bars.items()} == {
        lane: len(bars) for lane, bars in second.bars.items()
    }


def test_timeline_png_is_a_png():
    # Its speed (about 70 ms) is measured by benchmarks/timeline_png.py, not asserted here.
    png = timeline_png(handshake_before_accept(), title="t", dpi=80)
    assert png.startswith(b"\x89PNG\r\n\x1a\n")


@pytest.mark.kernel
def test_a_real_recording_shows_the_server_side_before_accept():
    from handshake_lab.net.clients import close, connect
    from handshake_lab.net.server import LoopbackServer
    from handshake_lab.record.recorder import Recorder

    with Recorder() as recorder:
        with LoopbackServer(auto_accept=False) as server:
            client = connect(server.address)
            try:
                recorder.sample()
                accepted = server.accept()
                recorder.sample()
                close(accepted)
            finally:
                close(client)
    recording = recorder.recording
    artists = plot_timeline(recording, ax=Figure().add_subplot())
    assert artists.lanes == tuple(recording.lanes())
    assert {"listener", "client", "server 1"} <= set(artists.lanes)
    for lane in artists.lanes:
        sampled = [s for s in recording.state_spans() if s.lane == lane]
        assert len(artists.bars[lane]) == len(artists.spans[lane]) >= len(sampled)
        # Drawn from the first sample on, the not-sampled stretch before it.
        assert artists.spans[lane][0].start_ns == sampled[0].start_ns
        assert lane in artists.not_sampled
    assert len(artists.call_markers) == len(recording.call_spans())
    server_side = list(zip(artists.spans["server 1"], artists.bars["server 1"], strict=True))
    assert server_side[0][0].awaiting_accept and not server_side[0][0].accepted
    assert server_side[0][1].get_hatch() == NOT_ACCEPTED_HATCH
    labels = [text.get_text() for text in artists.legend.get_texts()]
    assert "ESTABLISHED" in labels and "LISTEN" in labels
    assert timeline_png(recording).startswith(b"\x89PNG")


def test_a_lane_starts_when_its_socket_was_made_unsampled_until_the_first_sample():
    artists = plot_timeline(handshake_before_accept(), ax=Figure().add_subplot())
    made = {  # lane: (first known, first sample), in ms
        "listener": (0.0, 1.0),  # listen(1) called
        "client": (2.0, 2.0 + 1e-5),  # connect() called
        "server 1": (2.0, 3.0),  # made during the client's connect()
        "client 2": (9.0, 9.0),  # called and sampled at once: nothing unsampled
    }
    for lane, (start, sampled) in made.items():
        if start == sampled:
            assert lane not in artists.not_sampled
            continue
        bar = artists.not_sampled[lane]
        assert bar.get_hatch() == NOT_SAMPLED_HATCH
        (path,) = bar.get_paths()
        assert (path.vertices[:, 0].min(), path.vertices[:, 0].max()) == pytest.approx(
            (start, sampled)
        )


def test_a_call_on_a_not_accepted_socket_ends_its_hatching():
    events = [
        state(0, "server 1", TcpState.ESTABLISHED, accepted=False),
        Event(2 * MS, CALL, "server 1", "recv()", "server"),
        Event(3 * MS, RETURN, "server 1", "recv()", "server", "b''"),
    ]
    artists = plot_timeline(Recording.from_events(events, 0, 4 * MS), ax=Figure().add_subplot())
    spans = [(s.start_ns, s.end_ns, s.accepted) for s in artists.spans["server 1"]]
    assert spans == [(0, 2 * MS, False), (2 * MS, 4 * MS, True)]
    assert [bar.get_hatch() for bar in artists.bars["server 1"]] == [NOT_ACCEPTED_HATCH, None]


@pytest.mark.parametrize(
    ("lanes", "ordered"),
    [
        (
            ["client", "client 2", "listener", "server 1", "server 2"],
            ["listener", "client", "server 1", "client 2", "server 2"],
        ),
        (
            [*(f"client {n}" for n in range(2, 7)), "client", "listener", "server 3", "x"],
            ["listener", "client", *(f"client {n}" for n in range(2, 7)), "server 3", "x"],
        ),
    ],
)
def test_lanes_are_ordered_listener_then_connections(lanes, ordered):
    assert lane_order(lanes) == ordered


def test_the_stepper_names_a_call_by_its_socket_which_the_row_already_says():
    assert display_name("client.connect()") == "connect()"
    assert display_name("server.accept() again") == "accept() again"
    assert display_name("conn.send(b'a.b()')") == "send(b'a.b()')"
    assert display_name("listen(128)") == "listen(128)"


def test_repeated_calls_are_written_once_with_their_count():
    events = [Event(0, CALL, "listener", "listen(5)", "server")]
    for n in range(1, 7):
        events += [
            Event(n * MS, CALL, "listener", "accept()", "server"),
            Event(n * MS + 100, RETURN, "listener", "accept()", "server"),
        ]
    artists = plot_timeline(Recording.from_events(events, 0, 8 * MS))
    accepts = [m for m in artists.call_markers if m.call.name == "accept()"]
    assert len(accepts) == 6 and {id(m.label) for m in accepts} == {id(accepts[0].label)}
    assert accepts[0].label.get_text() == "accept() ×6"


def test_many_lanes_fit_the_screen_with_calls_keyed_by_marker():
    events = []
    for n in range(1, 21):
        client = "client" if n == 1 else f"client {n}"
        events += [
            Event(n * MS, CALL, client, "connect()", "client"),
            Event(n * MS + 50_000, RETURN, client, "connect()", "client"),
            state(n * MS + 60_000, client, TcpState.ESTABLISHED),
            state(n * MS + 70_000, f"server {n}", TcpState.ESTABLISHED, accepted=False),
        ]
    artists = plot_timeline(Recording.from_events(events, 0, 30 * MS))
    assert artists.figure.get_size_inches()[1] <= MAX_FIGURE_HEIGHT
    assert artists.keyed and all(m.label is None for m in artists.call_markers)
    assert [t.get_text() for t in artists.call_key.get_texts()][0] == "connect() ×20"
    assert artists.lanes[:2] == ("client", "client 2")  # grouped: clients, then servers


def paused_steps() -> Recording:
    """Three steps a learner took 5 s and 14 s apart."""
    second = 1_000_000_000
    events = [
        Event(1 * MS, CALL, "listener", "listen(1)", "server"),
        Event(2 * MS, RETURN, "listener", "listen(1)", "server"),
        state(3 * MS, "listener", TcpState.LISTEN),
        Event(5 * second, CALL, "client", "connect()", "client"),
        Event(5 * second + MS, RETURN, "client", "connect()", "client"),
        state(5 * second + 2 * MS, "client", TcpState.ESTABLISHED),
        Event(19 * second, CALL, "client", "close()", "client"),
        Event(19 * second + MS, RETURN, "client", "close()", "client"),
    ]
    return Recording.from_events(events, 0, 19 * second + 3 * MS)


def test_compressed_idle_stretches_are_cut_short_with_their_length_written():
    recording = paused_steps()
    artists = plot_timeline(recording, compress_idle_over=1.0)
    assert [(cut.start_ns, cut.end_ns) for cut in artists.cuts] == [
        (3 * MS, 5_000_000_000),
        (5_000_000_000 + 2 * MS, 19_000_000_000),
    ]
    assert [cut.label.get_text() for cut in artists.cuts] == ["5.0 s", "14.0 s"]
    assert artists.ax.get_xlabel().startswith("time since the first event (s)")
    # Time runs from the first event, not from the recorder's start; each step gets room.
    xs = [m.start.get_xdata()[0] for m in artists.call_markers]
    low, high = artists.ax.get_xlim()
    assert xs[0] == pytest.approx(0.0) and low < 0 < xs[1] - 0.2 < xs[2] - 0.4 < high
    assert all(cut.width < 0.05 for cut in artists.cuts)
    tick_labels = [t.get_text() for t in artists.ax.get_xticklabels()]
    assert tick_labels == ["0", "4.999", "19.0"]  # each busy stretch, from the first event
    plain = plot_timeline(recording)
    assert plain.cuts == () and plain.unit == "ms"


def test_nothing_idle_enough_draws_like_a_plain_timeline_from_the_first_event():
    artists = plot_timeline(handshake_before_accept(), compress_idle_over=5.0)
    assert artists.cuts == ()
    assert artists.call_markers[0].start.get_xdata()[0] == pytest.approx(0.0)


@pytest.mark.parametrize("bad", [0, -1, "1", True])
def test_compress_idle_over_must_be_a_positive_number_of_seconds(bad):
    with pytest.raises(ValueError, match="number of seconds"):
        plot_timeline(handshake_before_accept(), compress_idle_over=bad)


def test_timeline_png_passes_compress_idle_over_on():
    assert timeline_png(paused_steps(), compress_idle_over=1.0).startswith(b"\x89PNG")


def test_importing_the_module_does_not_import_matplotlib():
    code = "import handshake_lab.show.timeline_plot, sys; assert 'matplotlib' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, timeout=SHORT_TIMEOUT * 10)


@pytest.mark.parametrize("recording", [None, [], "recording"])
def test_plotting_something_that_is_not_a_recording_says_what_to_pass(recording):
    from handshake_lab.show.timeline_plot import plot_timeline

    with pytest.raises(TypeError, match=r"recorder\.recording"):
        plot_timeline(recording)
