"""Draw a full accept queue from a Recording: the queue filling, the SYNs it dropped, the retries.

One Axes, two parts sharing one time axis in seconds, counted from the first SYN of the client
that met the full queue (its connect() call). Below: the listener's accept-queue length as the
recorder sampled it (TCP_INFO), a step line whose levels are named on the y axis, the highest
one "(full)". Above: one row per client with its kernel states as bars, and on the waiting
client's row a cross for each SYN that met the full queue (its first SYN, then each
retransmission the caller measured while it stayed in SYN-SENT) and a dot where it became
ESTABLISHED (the SYN that got through). A triangle on the queue line marks each accept().
Only ticks, axis labels, the title and the legend carry text, so no two texts can overlap.
Rules as in timeline_plot: matplotlib imported inside the functions; object API only; the
caller gets the artists back.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ..model.states import TcpState
from ..record.events import CALL, STATE, Recording, StateSpan
from .timeline_plot import figure_png, state_colour, state_label

QUEUE_COLOUR = "#0072B2"  # Okabe-Ito blue
DROPPED_COLOUR = "#D55E00"  # vermillion
ANSWERED_COLOUR = "#000000"
BAR_HEIGHT = 0.5
DROPPED_LABEL = "SYN sent, dropped: the queue was full"
ANSWERED_LABEL = "SYN got through: connect() done"
ACCEPT_LABEL = "accept() took a connection"
QUEUE_LABEL = "accept queue length (TCP_INFO)"


@dataclass(frozen=True)
class QueueArtists:
    """What ``plot_accept_queue`` drew, for tests and for callers who restyle.

    ``queue_levels`` are the (seconds, length) steps of the queue line; ``syns`` the
    (seconds, got_through) of each SYN marker on the waiting client's row.
    """

    figure: Any
    ax: Any
    client: str
    client_rows: tuple[str, ...]
    queue_line: Any
    queue_levels: tuple[tuple[float, int], ...]
    full_length: int
    bars: dict[str, tuple[Any, ...]]
    syns: tuple[tuple[float, bool], ...]
    syn_markers: tuple[Any, ...]
    accept_markers: tuple[Any, ...]
    legend: Any

    def __repr__(self) -> str:  # stable from run to run, for nbval
        dropped = sum(not through for _, through in self.syns)
        return (
            f"<accept queue: full at {self.full_length}; {self.client}: {dropped} SYNs dropped, "
            f"{len(self.syns) - dropped} got through; {len(self.accept_markers)} accept()>"
        )

    def _repr_png_(self) -> bytes:
        return figure_png(self.figure)


def _queue_samples(recording: Recording, listener: str) -> list[tuple[int, int, int]]:
    """(time_ns, length, maximum) of each sampled accept queue of `listener`."""
    return [
        (event.time_ns, event.queue.length, event.queue.maximum)
        for event in recording.events
        if event.kind == STATE and event.lane == listener and event.queue is not None
    ]


def plot_accept_queue(
    recording: Recording,
    *,
    client: str,
    retransmissions_ns: Sequence[int] = (),
    listener: str = "listener",
    ax=None,
    title: str | None = None,
) -> QueueArtists:
    """Draw the accept queue of `listener` and the SYNs of `client`; return the artists.

    `retransmissions_ns` are the monotonic times (ns, the recording's clock) at which the
    client's kernel was seen to resend its SYN while it was still in SYN-SENT.
    """
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    samples = _queue_samples(recording, listener)
    if not samples:
        raise ValueError(
            f"the recording has no accept queue on lane {listener!r}: record the experiment "
            "with a Recorder while the LoopbackServer listens"
        )
    first_syn = next(
        (
            event.time_ns
            for event in recording.events
            if event.kind == CALL and event.lane == client and event.name.startswith("connect()")
        ),
        None,
    )
    if first_syn is None:
        lanes = [lane for lane in recording.lanes() if lane.startswith("client")]
        raise ValueError(f"no connect() call on lane {client!r}; the client lanes are {lanes}")
    if ax is None:
        from matplotlib.figure import Figure

        ax = Figure(figsize=(9.5, 4.2), layout="constrained").add_subplot()
    figure = ax.get_figure()

    def seconds(time_ns: int) -> float:
        return (time_ns - first_syn) / 1e9

    connected = next(
        (
            event.time_ns
            for event in recording.events
            if event.kind == STATE
            and event.lane == client
            and event.state is TcpState.ESTABLISHED
            and event.time_ns >= first_syn
        ),
        None,
    )
    # The experiment ends at its first close(): later states (TIME_WAIT, gone) are not drawn.
    end_ns = next(
        (
            e.time_ns
            for e in recording.events
            if e.kind == CALL and e.name == "close()" and e.time_ns > first_syn
        ),
        recording.end_ns,
    )
    start_ns = min(samples[0][0], *(e.time_ns for e in recording.events if e.kind == CALL))
    full_length = max(samples[-1][2] + 1, max(length for _, length, _ in samples))

    # The queue, bottom part: rows 0 .. full_length.
    levels = [(seconds(time_ns), length) for time_ns, length, _ in samples if time_ns <= end_ns]
    xs = [x for x, _ in levels] + [seconds(end_ns)]
    ys = [y for _, y in levels] + [levels[-1][1]]
    ax.fill_between(xs, ys, step="post", color=QUEUE_COLOUR, alpha=0.15, linewidth=0)
    (queue_line,) = ax.step(xs, ys, where="post", color=QUEUE_COLOUR, linewidth=2)

    def length_at(time_ns: int) -> int:
        return next((n for t, n, _ in reversed(samples) if t <= time_ns), samples[0][1])

    accept_markers = []
    for call in recording.call_spans():
        if call.lane == listener and call.name == "accept()" and call.return_ns is not None:
            (marker,) = ax.plot(
                [seconds(call.return_ns)],
                [length_at(call.return_ns)],
                marker="v",
                markersize=9,
                color=QUEUE_COLOUR,
                markeredgecolor="white",
                linestyle="none",
                zorder=5,
            )
            accept_markers.append(marker)

    # The clients, top part: one row each, the first client on top.
    clients = [lane for lane in recording.lanes() if lane.startswith("client")]
    row_of = {lane: full_length + len(clients) - index for index, lane in enumerate(clients)}
    bars: dict[str, list] = {lane: [] for lane in clients}
    states_seen: dict[TcpState, None] = {}
    for span in recording.state_spans():
        if span.lane not in row_of or span.start_ns >= end_ns or span.gone:
            continue
        if span.state not in (TcpState.SYN_SENT, TcpState.ESTABLISHED, TcpState.SYN_RECEIVED):
            continue
        stop = min(span.end_ns, end_ns)
        bars[span.lane].append(_bar(ax, span, seconds(span.start_ns), seconds(stop), row_of))
        states_seen[span.state] = None

    row = row_of.get(client)
    syn_times = [first_syn] + [
        t for t in sorted(retransmissions_ns) if connected is None or t < connected
    ]
    syns = [(seconds(t), False) for t in syn_times]
    if connected is not None:
        syns.append((seconds(connected), True))
    syn_markers = []
    for x, through in syns:
        style = (
            {"marker": "o", "color": ANSWERED_COLOUR, "markerfacecolor": "white"}
            if through
            else {"marker": "X", "color": DROPPED_COLOUR, "markeredgecolor": "white"}
        )
        (marker,) = ax.plot([x], [row], markersize=11, linestyle="none", zorder=6, **style)
        syn_markers.append(marker)

    ticks = list(range(full_length + 1)) + [row_of[lane] for lane in clients]
    labels = [f"{n} waiting" for n in range(full_length)] + [f"{full_length} waiting (full)"]
    ax.set_yticks(ticks, labels + clients)
    ax.axhline(full_length + 0.5, color="#BBBBBB", linewidth=0.8)
    ax.set_ylim(-0.5, full_length + len(clients) + 0.6)
    span_x = seconds(end_ns) - seconds(start_ns)
    ax.set_xlim(seconds(start_ns) - 0.03 * span_x, seconds(end_ns) + 0.03 * span_x)
    ax.set_xlabel(f"seconds after {client}'s first SYN")
    ax.grid(axis="x", color="#E0E0E0", linewidth=0.6)
    ax.set_axisbelow(True)
    ax.tick_params(axis="y", length=0)
    if title is not None:
        ax.set_title(title)

    order = [TcpState.SYN_SENT, TcpState.SYN_RECEIVED, TcpState.ESTABLISHED]

    def marker(symbol: str, size: int, label: str, **colours) -> Line2D:
        return Line2D(
            [], [], marker=symbol, markersize=size, linestyle="none", label=label, **colours
        )

    handles = [
        Line2D([], [], color=QUEUE_COLOUR, linewidth=2, label=QUEUE_LABEL),
        marker("v", 9, ACCEPT_LABEL, color=QUEUE_COLOUR, markeredgecolor="white"),
        marker("X", 11, DROPPED_LABEL, color=DROPPED_COLOUR, markeredgecolor="white"),
    ]
    if connected is not None:
        handles.append(
            marker("o", 11, ANSWERED_LABEL, color=ANSWERED_COLOUR, markerfacecolor="white")
        )
    handles += [
        Patch(
            facecolor=state_colour(state), edgecolor="white", label=f"client {state_label(state)}"
        )
        for state in order
        if state in states_seen
    ]
    legend = ax.legend(
        handles=handles,
        loc="upper left",
        bbox_to_anchor=(1.01, 1.0),
        fontsize=9,
        frameon=False,
        borderaxespad=0,
    )
    return QueueArtists(
        figure=figure,
        ax=ax,
        client=client,
        client_rows=tuple(clients),
        queue_line=queue_line,
        queue_levels=tuple(zip(xs[:-1], ys[:-1], strict=True)),
        full_length=full_length,
        bars={lane: tuple(lane_bars) for lane, lane_bars in bars.items()},
        syns=tuple(syns),
        syn_markers=tuple(syn_markers),
        accept_markers=tuple(accept_markers),
        legend=legend,
    )


def _bar(ax, span: StateSpan, start: float, stop: float, row_of: dict[str, int]):
    return ax.broken_barh(
        [(start, stop - start)],
        (row_of[span.lane] - BAR_HEIGHT / 2, BAR_HEIGHT),
        facecolors=state_colour(span.state),
        edgecolors="white",
        linewidth=0.8,
    )
