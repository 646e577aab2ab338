"""Draw a Recording as a timeline: one row per socket, its kernel states as bars, its calls on top.

Rows: listeners first, then each client followed by the server's side of its connection (with
more than ``PAIRED_UP_TO`` connections: the clients, then the servers). A row starts when the
recording first knows of its socket (``Recording.first_known_ns``: the call that made it, or for
the server's side the client's connect()); until the kernel was first sampled it is drawn grey
and dotted, "not sampled yet", so nothing is shown that the kernel did not say. Coloured bars
are the states the kernel reported, one colour per state; a server-side span the kernel held
before any accept() (``span.awaiting_accept``) is drawn lighter and hatched, until the first
call made on that socket shows it was accepted. Each call is a line on its row from a triangle
(made) to a bar (returned), a cross (raised), or an open circle (still blocked at the end).
Text never overlaps, by construction: each call label is placed above or below its row where its
measured box is free, repeated calls are written once ("accept() ×20"); if a label finds no
free place, or the rows are too thin for labels, every call is drawn with a marker per call name
and named in the legend instead. ``compress_idle_over`` cuts long idle stretches to a fixed
width, with a break mark and their real length written on them. A new figure is 9.5 inches
wide and at most ``MAX_FIGURE_HEIGHT`` tall.
Rules: matplotlib is imported only inside the functions (``import handshake_lab.timeline_plot``
does not import it); object API only: no pyplot, no show, no savefig, no rcParams; the caller
gets the artists back. Colours are Okabe-Ito's, safe for the common colour-vision deficiencies.
"""

from __future__ import annotations

import bisect
import dataclasses
import io
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ..model.states import TcpState
from ..record.events import CALL, CallSpan, Recording, StateSpan, lane_role_and_number

# Okabe-Ito's seven colours for the states of a handshake and a close; two greys for the
# listener and for CLOSED (they differ in lightness, which every reader can see); two dark
# colours from Paul Tol's palette for the states a course seldom shows.
STATE_COLOURS = {
    TcpState.LISTEN: "#C8C8C8",  # light grey
    TcpState.SYN_SENT: "#E69F00",  # orange
    TcpState.SYN_RECEIVED: "#F0E442",  # yellow
    TcpState.ESTABLISHED: "#009E73",  # bluish green
    TcpState.FIN_WAIT_1: "#56B4E9",  # sky blue
    TcpState.FIN_WAIT_2: "#0072B2",  # blue
    TcpState.CLOSING: "#332288",  # indigo (Tol)
    TcpState.TIME_WAIT: "#CC79A7",  # reddish purple
    TcpState.CLOSE_WAIT: "#D55E00",  # vermillion
    TcpState.LAST_ACK: "#882255",  # wine (Tol)
    TcpState.CLOSED: "#7A7A7A",  # dark grey
}
UNKNOWN_STATE_COLOUR = "#FFFFFF"
CALL_COLOUR = "#000000"
NOT_ACCEPTED_HATCH = "////"
NOT_ACCEPTED_LABEL = "hatched: in the kernel, not yet accept()ed"
NOT_SAMPLED_COLOUR = "#EDEDED"
NOT_SAMPLED_HATCH = "..."
NOT_SAMPLED_LABEL = "dotted grey: no state from the kernel yet"
MICROSECONDS_BELOW_NS = 2_000_000  # a recording shorter than 2 ms is drawn in µs
BAR_HEIGHT = 0.5
LABEL_OFFSET = 0.3  # call labels sit this far above (or below) the lane's centre
FIGURE_WIDTH = 9.5  # inches: the course's figure width
MAX_FIGURE_HEIGHT = 7.0  # inches: a timeline fits on a laptop's screen
LANE_HEIGHT = 0.6  # inches per row of a new figure, with room for call labels
FRAME_HEIGHT = 1.3  # inches of title, axis and margins
LABEL_SIZE, LEGEND_SIZE, TICK_SIZE = 8.5, 9, 9  # points: readable in a 900 px wide image
#: Up to this many connections each client is followed by its server side; more are grouped.
PAIRED_UP_TO = 4
#: This many calls of one name in a row on one lane are written once, with their count.
REPEATS_WRITTEN_ONCE = 3
#: Markers that tell calls apart by name when labels do not fit (then keyed in the legend).
KEY_MARKERS = ("s", "D", "^", "v", "P", "*", "h", "p", "<", "d", "H", "8")  # not o, x, |
CUT_SHARE = 0.03  # of the axis' width: each idle stretch cut short
LABEL_PADDING = 3  # pixels kept free around each label


@dataclass(frozen=True)
class CallArtists:
    """One socket call as drawn: its line, its two markers and its label."""

    call: CallSpan
    line: Any
    start: Any
    end: Any
    label: Any  # a Text, shared by calls written once ("accept() ×20"); None when keyed


@dataclass(frozen=True)
class Cut:
    """An idle stretch drawn cut short: its real times and where it is drawn."""

    start_ns: int
    end_ns: int
    x: float
    width: float
    label: Any = None


@dataclass(frozen=True)
class TimelineArtists:
    """What ``plot_timeline`` drew, for tests and for callers who restyle.

    ``bars`` maps each lane to one ``broken_barh`` collection per state span, in time order;
    ``spans`` holds those spans in the same order (a not-accepted span a call on its socket
    shows ended is two spans). ``not_sampled`` maps a lane to the bar drawn before its first
    sample. ``keyed`` is True when calls are told apart by markers named in the legend rather
    than labels. ``legend`` is None for an empty recording.
    """

    figure: Any
    ax: Any
    lanes: tuple[str, ...]
    bars: dict[str, tuple[Any, ...]]
    spans: dict[str, tuple[StateSpan, ...]]
    call_markers: tuple[CallArtists, ...]
    legend: Any
    unit: str
    not_sampled: dict[str, Any] = dataclasses.field(default_factory=dict)
    cuts: tuple[Cut, ...] = ()
    keyed: bool = False
    call_key: Any = None  # the figure legend naming each call's marker, when keyed

    def __repr__(self) -> str:
        # Stable from run to run, for nbval: no addresses, no count of sampled states.
        return f"<timeline: {', '.join(self.lanes) or 'empty'}; {len(self.call_markers)} calls>"

    def _repr_png_(self) -> bytes:
        return figure_png(self.figure)


def state_label(name: TcpState | str) -> str:
    """The legend's text for a state (or its name): RFC 9293's name, then Linux's if it differs."""
    state = _state(name)
    return str(name) if state is None else state.display_name


def state_colour(name: TcpState | str) -> str:
    """The fixed colour of a state (or of a Linux, RFC or enum name)."""
    state = _state(name)
    return STATE_COLOURS[state] if state is not None else UNKNOWN_STATE_COLOUR


def _state(name: TcpState | str) -> TcpState | None:
    if isinstance(name, TcpState):
        return name
    try:
        return TcpState.from_name(name)
    except ValueError:
        return None  # drawn white and labelled with the name as given


def _lighter(colour: str, amount: float = 0.55) -> tuple[float, float, float]:
    red, green, blue = (int(colour[i : i + 2], 16) / 255 for i in (1, 3, 5))
    return tuple(channel + (1 - channel) * amount for channel in (red, green, blue))


def lane_order(lanes: Sequence[str]) -> list[str]:
    """Listeners first; then each client followed by the server's side of its connection, or,
    with more than PAIRED_UP_TO connections, the clients and then the servers; others last."""
    listeners, clients, servers, others = [], [], [], []
    for lane in lanes:
        role, number = lane_role_and_number(lane)
        group = {"listener": listeners, "client": clients, "server": servers}.get(role, others)
        group.append((number, lane))
    if max(len(clients), len(servers)) <= PAIRED_UP_TO:
        connections = sorted(clients + servers, key=lambda pair: (pair[0], pair in servers))
    else:
        connections = sorted(clients) + sorted(servers)
    return [lane for _, lane in [*sorted(listeners), *connections, *others]]


def display_name(call_name: str) -> str:
    """A call as written on its row: the stepper's 'client.connect()' is 'connect()' on the
    client's row, whose name already says whose call it is."""
    return re.sub(r"^[A-Za-z_]\w*\.(?=\w+\()", "", call_name)


class TimeAxis:
    """Where a time (ns) is drawn on x.

    Without compression: linear, in µs or ms since the recording started. With
    ``compress_idle_over`` (seconds): time runs from the first event, and every stretch longer
    than that with no event is cut to CUT_SHARE of the axis. The busy stretches between cuts
    (a step of the stepper, say) share the rest by their length, but each gets at least an
    even share and at most three, so a short step stays readable beside a long one; ticks
    then mark where each busy stretch starts, in seconds since the first event.
    """

    def __init__(self, recording: Recording, compress_idle_over: float | None = None) -> None:
        if compress_idle_over is not None and (
            isinstance(compress_idle_over, bool)
            or not isinstance(compress_idle_over, (int, float))
            or not compress_idle_over > 0
        ):
            raise ValueError(
                "compress_idle_over is a number of seconds greater than 0 (or None to draw "
                f"time linearly), got {compress_idle_over!r}"
            )
        self.compressed = compress_idle_over is not None and bool(recording.events)
        self.cuts: list[tuple[int, int, float, float]] = []  # start, end, x, width
        self.pieces: list[tuple[int, int, float, float]] = []  # the busy stretches
        if not self.compressed:
            self.origin_ns = recording.start_ns
            duration_ns = recording.end_ns - recording.start_ns
            self.unit, self.per_unit = (
                ("µs", 1e3) if duration_ns < MICROSECONDS_BELOW_NS else ("ms", 1e6)
            )
            return
        self.unit, self.per_unit = "s", 1e9
        times = sorted({event.time_ns for event in recording.events} | {recording.end_ns})
        self.origin_ns = times[0]
        busy = [[times[0], times[0]]]
        for before, after in zip(times, times[1:], strict=False):
            if after - before > compress_idle_over * 1e9:
                busy.append([after, after])
            else:
                busy[-1][1] = after
        count = len(busy)
        cut_share = min(CUT_SHARE, 0.25 / (count - 1)) if count > 1 else 0.0
        total = sum(end - start for start, end in busy) or 1
        weights = [min(max((end - start) / total, 1 / count), 3 / count) for start, end in busy]
        scale = (1 - cut_share * (count - 1)) / sum(weights)
        x = 0.0
        for index, (start, end) in enumerate(busy):
            self.pieces.append((start, end, x, weights[index] * scale))
            x += weights[index] * scale
            if index + 1 < count:
                self.cuts.append((end, busy[index + 1][0], x, cut_share))
                x += cut_share
        self._stretches = sorted(self.pieces + self.cuts)
        self._starts = [stretch[0] for stretch in self._stretches]

    def x_of(self, time_ns: int) -> float:
        if not self.compressed:
            return (time_ns - self.origin_ns) / self.per_unit
        index = max(bisect.bisect_right(self._starts, time_ns) - 1, 0)
        start, end, x, width = self._stretches[index]
        if end <= start:
            return x + width / 2
        return x + width * min(max((time_ns - start) / (end - start), 0.0), 1.0)

    def limits(self, first_ns: int, end_ns: int) -> tuple[float, float]:
        """The x range to show: from just before the first event to just after the end."""
        low, high = self.x_of(first_ns), self.x_of(end_ns)
        margin = 0.03 * max(high - low, 1e-9)
        return low - margin, high + margin

    def ticks(self) -> tuple[list[float], list[str]]:
        """Compressed: a tick where each busy stretch starts, with its time since the first
        event in seconds."""
        positions, labels = [], []
        for start, _, _, _ in self.pieces:
            positions.append(self.x_of(start))
            labels.append(_seconds_text((start - self.origin_ns) / 1e9))
        return positions, labels


def _seconds_text(seconds: float) -> str:
    if seconds == 0:
        return "0"
    return f"{seconds:.3f}".rstrip("0").rstrip(".") if seconds < 10 else f"{seconds:.1f}"


def _duration_text(nanoseconds: int) -> str:
    if nanoseconds >= 1e9:
        return f"{nanoseconds / 1e9:.1f} s"
    if nanoseconds >= 1e6:
        return f"{nanoseconds / 1e6:.0f} ms"
    return f"{nanoseconds / 1e3:.0f} µs"


def plot_timeline(
    recording: Recording,
    ax=None,
    *,
    title: str | None = None,
    compress_idle_over: float | None = None,
) -> TimelineArtists:
    """Draw ``recording`` on ``ax`` (a new Figure's Axes if None) and return the artists.

    ``compress_idle_over``: seconds; a stretch longer than that with no event is drawn cut
    short, with a break mark and its real length, and time runs from the first event.
    """
    if not isinstance(recording, Recording):
        raise TypeError(
            f"plot_timeline draws a Recording (recorder.recording), got {type(recording).__name__}"
        )
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.layout_engine import ConstrainedLayoutEngine

    lanes = lane_order(recording.lanes())
    axis = TimeAxis(recording, compress_idle_over)
    if ax is None:
        from matplotlib.figure import Figure

        height = FRAME_HEIGHT + LANE_HEIGHT * max(len(lanes), 1) + (0.3 if axis.cuts else 0)
        figure = Figure(
            figsize=(FIGURE_WIDTH, min(height, MAX_FIGURE_HEIGHT)), layout="constrained"
        )
        ax = figure.add_subplot()
    figure = ax.get_figure()
    row_of = {lane: row for row, lane in enumerate(lanes)}
    x_of = axis.x_of

    bars, spans, not_sampled, states_seen = _draw_states(ax, recording, row_of, x_of)
    first_ns = min((event.time_ns for event in recording.events), default=recording.start_ns)
    ax.set_xlim(*axis.limits(first_ns, recording.end_ns))
    since = "the first event" if axis.compressed else "recording started"
    xlabel = f"time since {since} ({axis.unit})"
    if axis.cuts:
        xlabel += f"; pauses over {compress_idle_over:g} s cut short, their length above"
    ax.set_xlabel(xlabel, fontsize=TICK_SIZE)
    ax.grid(axis="x", color="#E0E0E0", linewidth=0.6)
    ax.set_axisbelow(True)
    ax.tick_params(axis="both", length=0, labelsize=TICK_SIZE)
    ax.tick_params(axis="x", length=3)
    top = -1.3 if axis.cuts else -0.75  # room for the first row's labels and the cuts' lengths
    ax.set_ylim(len(lanes) - 0.4, top)
    if title is not None:
        ax.set_title(title, fontsize=TICK_SIZE + 2)
    if not lanes:
        ax.text(
            0.5,
            0.5,
            "nothing recorded yet",
            transform=ax.transAxes,
            ha="center",
            va="center",
            color="#555555",
        )
    cuts = tuple(_draw_cut(ax, cut) for cut in axis.cuts)

    calls = recording.call_spans()
    lines = [_draw_call(ax, call, row_of[call.lane], x_of, recording.end_ns) for call in calls]
    canvas = figure.canvas
    if not isinstance(canvas, FigureCanvasAgg):
        canvas = FigureCanvasAgg(figure)
    renderer = canvas.get_renderer()
    ax.set_yticks(range(len(lanes)), lanes)
    handles = _state_handles(states_seen, spans, not_sampled)
    legend = _legend(ax, [*handles, *_call_handles(calls, None)])
    _fit_lane_names(ax, lanes)  # settles the layout too: labels are placed in pixels
    _hide_crowded(cut.label for cut in cuts)  # before labels are placed around them
    labels = _place_labels(ax, renderer, calls, row_of, x_of, recording.end_ns, cuts)
    call_key, keyed = None, labels is None
    if keyed:
        names = list(dict.fromkeys(display_name(call.name) for call in calls))
        for call, (_, start, _) in zip(calls, lines, strict=True):
            marker, fill = _key_marker(names.index(display_name(call.name)))
            start.set_marker(marker)
            start.set_markerfacecolor(fill)
        key = _call_handles(calls, names)
        if isinstance(figure.get_layout_engine(), ConstrainedLayoutEngine):
            legend.remove()
            legend = _legend(ax, handles)
            call_key = _call_key(figure, key)
        else:
            legend.remove()
            legend = _legend(ax, [*handles, *key])
        labels = [None] * len(calls)
        _fit_lane_names(ax, lanes)
    if axis.compressed:
        _set_thinned_ticks(ax, renderer, *axis.ticks())
    _hide_crowded(cut.label for cut in cuts)
    call_markers = tuple(
        CallArtists(call, line, start, end, label)
        for call, (line, start, end), label in zip(calls, lines, labels, strict=True)
    )
    return TimelineArtists(
        figure=figure,
        ax=ax,
        lanes=tuple(lanes),
        bars={lane: tuple(lane_bars) for lane, lane_bars in bars.items()},
        spans={lane: tuple(lane_spans) for lane, lane_spans in spans.items()},
        call_markers=call_markers,
        legend=legend if handles or calls else None,
        unit=axis.unit,
        not_sampled=not_sampled,
        cuts=cuts,
        keyed=keyed,
        call_key=call_key,
    )


def _draw_states(ax, recording: Recording, row_of: dict[str, int], x_of):
    """The state bars, split where a call on a not-yet-accepted socket shows it was accepted,
    and before each lane's first sample a 'not sampled yet' bar from when it was made."""
    first_call = {}
    for event in recording.events:
        if event.kind == CALL:
            first_call.setdefault(event.lane, event.time_ns)
    bars: dict[str, list] = {lane: [] for lane in row_of}
    spans: dict[str, list[StateSpan]] = {lane: [] for lane in row_of}
    first_sample: dict[str, int] = {}
    states_seen: dict[TcpState, None] = {}
    for span in recording.state_spans():
        first_sample.setdefault(span.lane, span.start_ns)
        accepted_at = first_call.get(span.lane)
        pieces = [span]
        if span.awaiting_accept and accepted_at is not None and accepted_at < span.end_ns:
            accepted_at = max(accepted_at, span.start_ns)
            pieces = [
                dataclasses.replace(span, end_ns=accepted_at),
                dataclasses.replace(span, start_ns=accepted_at, accepted=True),
            ]
        for piece in pieces:
            if piece.end_ns <= piece.start_ns and len(pieces) > 1:
                continue
            colour = state_colour(piece.state)
            style = {"facecolors": colour, "edgecolors": "white", "linewidth": 0.8}
            if piece.awaiting_accept:  # a patch's hatch takes its edge colour
                style = {
                    "facecolors": [_lighter(colour)],
                    "edgecolors": colour,
                    "linewidth": 0.8,
                    "hatch": NOT_ACCEPTED_HATCH,
                }
            bars[piece.lane].append(
                _bar(ax, row_of[piece.lane], x_of, piece.start_ns, piece.end_ns, **style)
            )
            spans[piece.lane].append(piece)
        states_seen[span.state] = None
    not_sampled = {}
    for lane in row_of:
        made = recording.first_known_ns(lane)
        sampled = first_sample.get(lane, recording.end_ns)
        if made is not None and made < sampled:
            not_sampled[lane] = _bar(
                ax,
                row_of[lane],
                x_of,
                made,
                sampled,
                facecolors=NOT_SAMPLED_COLOUR,
                edgecolors="#9A9A9A",
                linewidth=0.6,
                hatch=NOT_SAMPLED_HATCH,
            )
    return bars, spans, not_sampled, states_seen


def _bar(ax, row: int, x_of, start_ns: int, end_ns: int, **style):
    start = x_of(start_ns)
    return ax.broken_barh(
        [(start, x_of(end_ns) - start)], (row - BAR_HEIGHT / 2, BAR_HEIGHT), **style
    )


def _draw_cut(ax, cut: tuple[int, int, float, float]) -> Cut:
    """An idle stretch cut short: a pale band, a break mark on the axis, its real length."""
    start_ns, end_ns, x, width = cut
    ax.axvspan(x, x + width, facecolor="white", alpha=0.7, edgecolor="none", zorder=2)
    for edge in (x, x + width):
        ax.axvline(edge, color="#8A8A8A", linewidth=0.8, linestyle=(0, (3, 2)), zorder=2)
        ax.plot(
            [edge - width * 0.15, edge + width * 0.15],
            [-0.012, 0.012],
            color="#333333",
            linewidth=1.2,
            transform=ax.get_xaxis_transform(),
            clip_on=False,
            zorder=6,
        )
    label = ax.text(
        x + width / 2,
        -0.95,
        _duration_text(end_ns - start_ns),
        ha="center",
        va="center",
        fontsize=LABEL_SIZE - 0.5,
        color="#333333",
        zorder=6,
    )
    label.set_in_layout(False)
    return Cut(start_ns, end_ns, x, width, label)


def _draw_call(ax, call: CallSpan, row: int, x_of, end_ns: int):
    """A call's line, its start marker (a triangle) and its end marker."""
    start_x = x_of(call.call_ns)
    blocked = call.return_ns is None
    stop_x = x_of(end_ns if blocked else call.return_ns)
    (line,) = ax.plot(
        [start_x, stop_x],
        [row, row],
        color=CALL_COLOUR,
        linewidth=1.2,
        solid_capstyle="butt",
        zorder=3,
    )
    start = _call_marker(ax, start_x, row, marker=">", markersize=6)
    if blocked:
        end = _call_marker(ax, stop_x, row, marker="o", markersize=6, markerfacecolor="white")
    else:
        end = _call_marker(
            ax, stop_x, row, marker="x" if call.failed else "|", markersize=8, markeredgewidth=2
        )
    return line, start, end


def _call_text(call: CallSpan) -> str:
    blocked = call.return_ns is None
    return display_name(call.name) + (
        " still blocked" if blocked else " raised" if call.failed else ""
    )


def _written_once(calls: list[CallSpan]) -> list[list[int]]:
    """Indexes of the calls grouped by label: REPEATS_WRITTEN_ONCE or more calls in a row on a
    lane with the same words are one group, written once with their count."""
    runs: list[list[int]] = []
    last_run: dict[str, list[int]] = {}
    for index, call in enumerate(calls):
        run = last_run.get(call.lane)
        if run is not None and _call_text(calls[run[-1]]) == _call_text(call):
            run.append(index)
            continue
        run = last_run[call.lane] = [index]
        runs.append(run)
    groups = []
    for run in runs:
        groups.extend([run] if len(run) >= REPEATS_WRITTEN_ONCE else [[i] for i in run])
    return groups


def _place_labels(ax, renderer, calls, row_of, x_of, end_ns, cuts) -> list | None:
    """Write each call's label above or below its row where its box is free; None (and
    nothing written) when one finds no place or the rows are too thin for labels."""
    axes_box = ax.get_window_extent(renderer)
    row_pixels = abs(ax.transData.transform((0, 1))[1] - ax.transData.transform((0, 0))[1])
    taken = [cut.label.get_window_extent(renderer) for cut in cuts if cut.label.get_visible()]
    labels: list = [None] * len(calls)
    written = []
    for group in _written_once(calls):
        first, last = calls[group[0]], calls[group[-1]]
        words = _call_text(first) + (f" ×{len(group)}" if len(group) > 1 else "")
        row = row_of[first.lane]
        start_x = x_of(first.call_ns)
        stop_x = x_of(end_ns if last.return_ns is None else last.return_ns)
        text = ax.text(start_x, row, words, fontsize=LABEL_SIZE, color=CALL_COLOUR, zorder=5)
        text.set_in_layout(False)
        written.append(text)
        box = _free_place(ax, renderer, text, row, start_x, stop_x, axes_box, taken)
        if box is None or box.height > (1 - BAR_HEIGHT - 0.05) * row_pixels:
            for text in written:
                text.remove()
            return None
        taken.append(box)
        for index in group:
            labels[index] = text
    return labels


def _free_place(ax, renderer, text, row, start_x, stop_x, axes_box, taken):
    """Try above the row, then below, from the call's start or ending at its end; move the
    text into the axes sideways if needed. Its box where it fits, else None."""
    for side in (-1, 1):
        for anchor, align in ((start_x, "left"), (stop_x, "right")):
            text.set_position((anchor, row + side * LABEL_OFFSET))
            text.set_horizontalalignment(align)
            text.set_verticalalignment("bottom" if side < 0 else "top")
            box = text.get_window_extent(renderer)
            shift = max(axes_box.x0 + 2 - box.x0, min(0, axes_box.x1 - 2 - box.x1))
            if shift:
                pixel_x = ax.transData.transform((anchor, 0))[0] + shift
                text.set_x(ax.transData.inverted().transform((pixel_x, 0))[0])
                box = text.get_window_extent(renderer)
            inside = axes_box.y0 <= box.y0 and box.y1 <= axes_box.y1
            padded = box.padded(LABEL_PADDING)
            if inside and not any(padded.overlaps(other) for other in taken):
                return box
    return None


def _fit_lane_names(ax, lanes: list[str]) -> None:
    """Settle the layout; lane names (the y tick labels) small enough that neighbours never
    touch."""
    figure = ax.get_figure()
    figure.draw_without_rendering()
    if not lanes:
        return
    row_pixels = abs(ax.transData.transform((0, 1))[1] - ax.transData.transform((0, 0))[1])
    size = min(TICK_SIZE, row_pixels * 72 / figure.dpi / 1.35)
    if size < TICK_SIZE:
        ax.tick_params(axis="y", labelsize=size)
        figure.draw_without_rendering()


def _call_key(figure, handles: list):
    """The calls' markers named in a legend under the axes, in rows across the figure. The
    figure keeps its size (which must not depend on how fast the calls came): the axes give
    up the room."""
    return figure.legend(
        handles=handles,
        loc="outside lower center",
        ncols=min(len(handles), 4),
        fontsize=LEGEND_SIZE,
        frameon=False,
    )


def _hide_crowded(texts) -> None:
    """Hide each text (a cut's length) whose box would touch one kept before it."""
    kept = []
    for text in texts:
        text.set_visible(True)  # an invisible text measures as nothing
        box = text.get_window_extent().padded(LABEL_PADDING)
        text.set_visible(not any(box.overlaps(other) for other in kept))
        if text.get_visible():
            kept.append(box)


def _key_marker(index: int) -> tuple[str, str]:
    """The marker telling calls of the index-th name apart: filled, then open on a second round."""
    marker = KEY_MARKERS[index % len(KEY_MARKERS)]
    return marker, (CALL_COLOUR if index < len(KEY_MARKERS) else "white")


def _state_handles(states_seen, spans, not_sampled) -> list:
    from matplotlib.patches import Patch

    order = list(STATE_COLOURS)
    handles = [
        Patch(facecolor=state_colour(state), edgecolor="white", label=state_label(state))
        for state in sorted(states_seen, key=order.index)
    ]
    if any(span.awaiting_accept for lane_spans in spans.values() for span in lane_spans):
        handles.append(
            Patch(
                facecolor="white",
                edgecolor="#555555",
                hatch=NOT_ACCEPTED_HATCH,
                label=NOT_ACCEPTED_LABEL,
            )
        )
    if not_sampled:
        handles.append(
            Patch(
                facecolor=NOT_SAMPLED_COLOUR,
                edgecolor="#9A9A9A",
                hatch=NOT_SAMPLED_HATCH,
                label=NOT_SAMPLED_LABEL,
            )
        )
    return handles


def _call_handles(calls: list[CallSpan], names: list[str] | None) -> list:
    """The calls' legend entries: how a call is drawn, and with names keyed, one per name."""
    from matplotlib.lines import Line2D

    if not calls:
        return []
    counts: dict[str, int] = {}
    for call in calls:
        counts[display_name(call.name)] = counts.get(display_name(call.name), 0) + 1
    if names is None:
        handles = [Line2D([], [], color=CALL_COLOUR, marker=">", markersize=6, label="call made")]
    else:
        handles = []
        for index, name in enumerate(names):
            marker, fill = _key_marker(index)
            count = f" ×{counts[name]}" if counts[name] > 1 else ""
            handles.append(
                Line2D(
                    [],
                    [],
                    color=CALL_COLOUR,
                    marker=marker,
                    markersize=6,
                    markerfacecolor=fill,
                    label=f"{name}{count}",
                )
            )
    marker = {"color": CALL_COLOUR, "linestyle": "none"}
    handles.append(
        Line2D([], [], marker="|", markersize=8, markeredgewidth=2, **marker, label="call returned")
    )
    if any(call.failed for call in calls) and names is not None:
        handles.append(
            Line2D(
                [], [], marker="x", markersize=8, markeredgewidth=2, **marker, label="call raised"
            )
        )
    if any(call.return_ns is None for call in calls):
        handles.append(
            Line2D(
                [],
                [],
                marker="o",
                markersize=6,
                markerfacecolor="white",
                **marker,
                label="still blocked",
            )
        )
    return handles


def _legend(ax, handles: list):
    """The legend right of the axes, in as many columns as the figure's height needs."""
    if not handles:
        return None
    figure = ax.get_figure()
    rows = max(1, int(figure.get_figheight() * 72 * 0.85 / (LEGEND_SIZE * 1.75)))
    return ax.legend(
        handles=handles,
        loc="upper left",
        bbox_to_anchor=(1.01, 1.0),
        fontsize=LEGEND_SIZE,
        frameon=False,
        borderaxespad=0,
        ncols=-(-len(handles) // rows),
    )


def _set_thinned_ticks(ax, renderer, positions: list[float], labels: list[str]) -> None:
    """Keep the ticks whose labels do not touch the one kept before them (left to right)."""
    from matplotlib.font_manager import FontProperties

    font = FontProperties(size=TICK_SIZE)
    low, high = ax.get_xlim()
    kept, kept_labels, right_edge = [], [], float("-inf")
    for position, label in sorted(zip(positions, labels, strict=True)):
        if not low <= position <= high:
            continue
        width = renderer.get_text_width_height_descent(label, font, ismath=False)[0]
        centre = ax.transData.transform((position, 0))[0]
        if centre - width / 2 > right_edge + 2 * LABEL_PADDING:
            kept.append(position)
            kept_labels.append(label)
            right_edge = centre + width / 2
    ax.set_xticks(kept, kept_labels)


def figure_png(figure) -> bytes:
    """Render a Figure to PNG bytes with the Agg canvas, at the figure's dpi (no pyplot)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = figure.canvas
    if not isinstance(canvas, FigureCanvasAgg):
        canvas = FigureCanvasAgg(figure)
    buffer = io.BytesIO()
    canvas.print_png(buffer, metadata={"Software": None})
    return buffer.getvalue()


def timeline_png(recording: Recording, *, dpi: float = 100, **kwargs) -> bytes:
    """The timeline as PNG bytes (for an ipywidgets.Image); kwargs go to plot_timeline."""
    figure = plot_timeline(recording, **kwargs).figure
    figure.set_dpi(dpi)
    return figure_png(figure)


def _call_marker(ax, x: float, row: int, **style):
    """One marker of a call on its lane: where it was made, returned, failed or still waits."""
    (marker,) = ax.plot([x], [row], color=CALL_COLOUR, linestyle="none", zorder=4, **style)
    return marker
