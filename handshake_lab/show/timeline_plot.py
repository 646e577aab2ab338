"""Draw a Recording as a timeline: one row per socket, its kernel states as bars, its calls on top.

Each lane (the listener, each client, the server's side of each connection) is a row, in
``Recording.lanes()`` order. Coloured bars are the states the kernel reported, one colour per
state wherever it appears; a server-side span the kernel held before ``accept()`` returned
(``span.awaiting_accept``) is drawn lighter and hatched, so the connection can be seen ESTABLISHED
before anyone accepted it. Each socket call is a line on its lane from a filled triangle (made)
to a bar (returned), or to an open circle at the end of the recording if it is still blocked.
Rules: matplotlib is imported only inside the functions (``import handshake_lab.timeline_plot``
does not import it); object API only: no pyplot, no show, no savefig, no rcParams; the caller
gets the artists back. Colours are Okabe-Ito's, safe for the common colour-vision deficiencies.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

from ..model.states import TcpState
from ..record.events import CallSpan, Recording, StateSpan

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
MICROSECONDS_BELOW_NS = 2_000_000  # a recording shorter than 2 ms is drawn in µs
BAR_HEIGHT = 0.5
LABEL_OFFSET = 0.3  # call labels sit this far above (or below) the lane's centre


@dataclass(frozen=True)
class CallArtists:
    """One socket call as drawn: its line, its two markers and its label."""

    call: CallSpan
    line: Any
    start: Any
    end: Any
    label: Any


@dataclass(frozen=True)
class TimelineArtists:
    """What ``plot_timeline`` drew, for tests and for callers who restyle.

    ``bars`` maps each lane to one ``broken_barh`` collection per state span, in time order;
    ``spans`` holds those spans in the same order. ``legend`` is None for an empty recording.
    """

    figure: Any
    ax: Any
    lanes: tuple[str, ...]
    bars: dict[str, tuple[Any, ...]]
    spans: dict[str, tuple[StateSpan, ...]]
    call_markers: tuple[CallArtists, ...]
    legend: Any
    unit: str

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


def plot_timeline(recording: Recording, ax=None, *, title: str | None = None) -> TimelineArtists:
    """Draw ``recording`` on ``ax`` (a new Figure's Axes if None) and return the artists."""
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    lanes = recording.lanes()
    if ax is None:
        from matplotlib.figure import Figure

        figure = Figure(figsize=(9.5, 1.3 + 0.6 * max(len(lanes), 1)), layout="constrained")
        ax = figure.add_subplot()
    figure = ax.get_figure()
    row_of = {lane: row for row, lane in enumerate(lanes)}
    duration_ns = recording.end_ns - recording.start_ns
    unit, per_unit = ("µs", 1e3) if duration_ns < MICROSECONDS_BELOW_NS else ("ms", 1e6)

    def x_of(time_ns: int) -> float:
        return (time_ns - recording.start_ns) / per_unit

    bars: dict[str, list] = {lane: [] for lane in lanes}
    spans: dict[str, list[StateSpan]] = {lane: [] for lane in lanes}
    states_seen: dict[TcpState, None] = {}
    any_not_accepted = False
    for span in recording.state_spans():
        row = row_of[span.lane]
        colour = state_colour(span.state)
        not_accepted = span.awaiting_accept
        any_not_accepted |= not_accepted
        style = {"facecolors": colour, "edgecolors": "white", "linewidth": 0.8}
        if not_accepted:  # a patch's hatch takes its edge colour
            style = {
                "facecolors": [_lighter(colour)],
                "edgecolors": colour,
                "linewidth": 0.8,
                "hatch": NOT_ACCEPTED_HATCH,
            }
        bars[span.lane].append(
            ax.broken_barh(
                [(x_of(span.start_ns), x_of(span.end_ns) - x_of(span.start_ns))],
                (row - BAR_HEIGHT / 2, BAR_HEIGHT),
                **style,
            )
        )
        spans[span.lane].append(span)
        states_seen[span.state] = None

    end_x = x_of(recording.end_ns)
    first_x = min((x_of(event.time_ns) for event in recording.events), default=0.0)
    range_x = max(end_x - first_x, 1e-9)
    call_markers = []
    last_label_x: dict[str, tuple[float, int]] = {}
    for call in recording.call_spans():
        row = row_of[call.lane]
        start_x = x_of(call.call_ns)
        blocked = call.return_ns is None
        stop_x = end_x if blocked else x_of(call.return_ns)
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
                ax,
                stop_x,
                row,
                marker="x" if call.failed else "|",
                markersize=8,
                markeredgewidth=2,
            )
        # Labels of calls close together on one lane alternate above and below the bar.
        previous = last_label_x.get(call.lane)
        side = -1
        if previous is not None and start_x - previous[0] < 0.12 * range_x:
            side = -previous[1]
        last_label_x[call.lane] = (start_x, side)
        text = call.name + (" still blocked" if blocked else " raised" if call.failed else "")
        # Near the right edge a label ends where its call ends, clear of the legend.
        near_end = start_x > first_x + 0.75 * range_x
        label = ax.text(
            stop_x if near_end else start_x,
            row + side * LABEL_OFFSET,
            text,
            fontsize=8,
            ha="right" if near_end else "left",
            va="bottom" if side < 0 else "top",
            zorder=5,
            color=CALL_COLOUR,
        )
        call_markers.append(CallArtists(call, line, start, end, label))

    ax.set_yticks(range(len(lanes)), lanes)
    ax.set_ylim(len(lanes) - 0.4, -0.75)  # first lane on top, room for its labels
    # Start just before the first event: setting up a server can take longer than the
    # handshake, and the axis would be mostly empty.
    margin = 0.04 * range_x
    ax.set_xlim(first_x - margin, end_x + margin)
    ax.set_xlabel(f"time since recording started ({unit})")
    ax.grid(axis="x", color="#E0E0E0", linewidth=0.6)
    ax.set_axisbelow(True)
    ax.tick_params(axis="y", length=0)
    if title is not None:
        ax.set_title(title)
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

    legend = None
    order = list(STATE_COLOURS)
    handles = [
        Patch(facecolor=state_colour(state), edgecolor="white", label=state_label(state))
        for state in sorted(states_seen, key=order.index)
    ]
    if any_not_accepted:
        handles.append(
            Patch(
                facecolor="white",
                edgecolor="#555555",
                hatch=NOT_ACCEPTED_HATCH,
                label=NOT_ACCEPTED_LABEL,
            )
        )
    if call_markers:
        handles.append(
            Line2D([], [], color=CALL_COLOUR, marker=">", markersize=6, label="call made")
        )
        handles.append(
            Line2D(
                [],
                [],
                color=CALL_COLOUR,
                marker="|",
                markersize=8,
                markeredgewidth=2,
                linestyle="none",
                label="call returned",
            )
        )
        if any(c.call.return_ns is None for c in call_markers):
            handles.append(
                Line2D(
                    [],
                    [],
                    color=CALL_COLOUR,
                    marker="o",
                    markersize=6,
                    markerfacecolor="white",
                    linestyle="none",
                    label="still blocked",
                )
            )
    if handles:
        legend = ax.legend(
            handles=handles,
            loc="upper left",
            bbox_to_anchor=(1.01, 1.0),
            fontsize=8,
            frameon=False,
            borderaxespad=0,
        )
    return TimelineArtists(
        figure=figure,
        ax=ax,
        lanes=tuple(lanes),
        bars={lane: tuple(lane_bars) for lane, lane_bars in bars.items()},
        spans={lane: tuple(lane_spans) for lane, lane_spans in spans.items()},
        call_markers=tuple(call_markers),
        legend=legend,
        unit=unit,
    )


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
