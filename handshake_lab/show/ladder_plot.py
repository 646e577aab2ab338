"""Draw a ladder diagram of captured (or modelled) segments on a matplotlib Axes.

Client on the left, server on the right, time downwards: one arrow per segment, labelled with
its flags and seq/ack both absolute and relative to each side's ISN (three short lines, which fit
between the lanes, on an opaque box: the arrow passes behind the text, never through it), and
each end's state written beside its line after each segment. States come from ``states``
samples where they were measured (upright text) and from the TCP model elsewhere (italic
text). Under the label of a SYN or SYN+ACK go the options it carried (MSS, SACK_PERM, TS,
NOP, WS ...), named by ``model.tcp_options``. Only the segments given are drawn: a saved-SYN
capture (the SYN alone) draws one arrow, never the SYN+ACK and ACK it only counted.
Rules: matplotlib is imported only inside ``plot_ladder``; object API only (no pyplot, no show,
no savefig, no rcParams); the caller gets the artists back.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field

from ..model.packets import Segment, first_syn, initial_sequence_numbers, relative_seq_ack
from ..model.replay import states_after_each
from ..model.states import TcpState
from ..model.tcp_options import options_text

# Okabe-Ito colours, distinguishable with the common colour-vision deficiencies.
CLIENT_TO_SERVER_COLOUR = "#0072B2"  # blue
SERVER_TO_CLIENT_COLOUR = "#D55E00"  # vermillion
LANE_COLOUR = "#000000"
STATE_COLOUR = "#009E73"  # bluish green
ARRIVAL_DROP = 0.7  # an arrow lands this many rows below where it leaves: time passes
#: Inches per row of a new figure: more when a SYN's options are written under its label.
ROW_HEIGHT, ROW_HEIGHT_WITH_OPTIONS = 0.75, 1.3
#: An options line holds about this many characters: it must fit between the two lanes.
OPTIONS_LINE_WIDTH = 34
#: The options start this many points below the centre of a segment's three-line label.
OPTIONS_BELOW_POINTS = 19
#: Each segment's time is written this far left of the client's lane (which is at 0; the
#: server's is at 1), clear of the client's states.
TIMES_AT = -0.42
#: Labels sit on an opaque box: the arrow passes behind the text, never through it.
LABEL_BOX = {"facecolor": "white", "edgecolor": "none", "pad": 1.5}


@dataclass
class LadderArtists:
    """What ``plot_ladder`` drew, for tests and for callers who restyle."""

    axes: object
    lanes: list = field(default_factory=list)
    lane_labels: list = field(default_factory=list)
    arrows: list = field(default_factory=list)
    arrow_labels: list = field(default_factory=list)
    state_labels: list = field(default_factory=list)
    time_labels: list = field(default_factory=list)
    option_labels: list = field(default_factory=list)
    lost_marks: list = field(default_factory=list)


def _label(segment: Segment, isns: dict) -> str:
    """Flags (and length), absolute seq/ack, relative seq/ack: three lines narrower than the
    gap between the lanes."""
    relative_seq, relative_ack = relative_seq_ack(segment, isns)
    absolute = f"seq={segment.seq}"
    relative = f"seq={relative_seq}"
    if segment.has("ACK"):
        absolute += f" ack={segment.ack}"
        relative += f" ack={relative_ack}" if relative_ack is not None else ""
    flags = segment.flags + (f"  len={segment.payload_len}" if segment.payload_len else "")
    return f"{flags}\n{absolute}\nrelative to ISN: {relative}"


def _measured_states(
    segments: list[Segment], states: list[tuple[float, str, TcpState]]
) -> list[dict[str, TcpState]]:
    """Per segment, each side's last sampled state before the next segment (while sampled)."""
    last_sample_time = max(time for time, _, _ in states)
    rows = []
    for index, segment in enumerate(segments):
        if segment.time > last_sample_time:
            rows.append({})
            continue
        until = segments[index + 1].time if index + 1 < len(segments) else float("inf")
        row = {}
        for time, side, state in sorted(states, key=lambda sample: sample[0]):
            if time < until:
                row[side] = state
        rows.append(row)
    return rows


def _options_label(segment: Segment) -> str | None:
    """The options of a SYN or SYN+ACK, wrapped to fit between the lanes; None for others."""
    if not segment.has("SYN") or not segment.options:
        return None
    lines = options_text(segment, width=OPTIONS_LINE_WIDTH)
    return "options: " + "\n".join(lines)


#: A lost segment's arrow stops this far across, at a cross: near the receiver, whose socket
#: filter dropped it, and clear of the label in the middle of the arrow.
LOST_AT = 0.95


def draw_lost(ax, arrow, from_x: float, row: int, colour: str) -> list:
    """Cut a lost segment's arrow short: a dashed line to a cross, "lost" under it, inside
    the lanes."""
    stop_x = from_x + (1.0 - 2 * from_x) * LOST_AT
    stop_y = row + ARRIVAL_DROP * LOST_AT
    arrow.xy = (stop_x, stop_y)
    arrow.arrow_patch.set_arrowstyle("-")
    arrow.arrow_patch.set_linestyle("--")
    # Above the labels' white boxes, which may reach this far.
    (cross,) = ax.plot(
        [stop_x], [stop_y], marker="x", markersize=10, mew=2.5, color=colour, zorder=5
    )
    word = ax.annotate(
        "lost",
        xy=(stop_x, stop_y),
        xytext=(0, -7),
        textcoords="offset points",
        ha="left" if from_x == 1.0 else "right",
        va="top",
        fontsize=8,
        fontweight="bold",
        zorder=5,
        color=colour,
    )
    return [cross, word]


def states_with_losses(segments: list[Segment], lost: Collection[int]) -> list:
    """(client, server) after each segment from the TCP model with those segments lost, where
    the model sends exactly the captured flags; else the plain replay."""
    from ..capture.lost_segments import model_ladder

    ladder = model_ladder(segments, lost)
    if [step.segment.flags for step in ladder] != [s.flags for s in segments]:
        return states_after_each(segments)
    return [(step.client_state, step.server_state) for step in ladder]


def _time_text(offset: float, previous: float | None = None) -> str:
    """A segment's time from the first; one that would read the same as the previous one (two
    segments within a millisecond, a second in) also says how long after it it came."""
    text = f"+{offset:.3f} s" if offset >= 0.1 else f"+{offset * 1e6:.0f} µs"
    if previous is not None and offset >= 0.1 and text == _time_text(previous):
        text += f"\n(+{(offset - previous) * 1e6:.0f} µs)"
    return text


def plot_ladder(
    segments: list[Segment],
    ax=None,
    states=None,
    *,
    show_times: bool = True,
    show_options: bool = True,
    lost: Collection[int] = (),
) -> LadderArtists:
    """Draw the ladder on ``ax`` (a new Figure's Axes if None) and return the artists.

    ``states``: optional (time, 'client' or 'server', TcpState) samples, e.g. Capture.states.
    ``show_times``: write each segment's time since the first; pass False for the model's
    segments, whose times are only step numbers.
    ``show_options``: write each SYN's and SYN+ACK's options under its label.
    ``lost``: indexes of segments the network lost: their arrows stop at a cross.
    """
    if not segments:
        raise ValueError("there are no segments to draw: capture a handshake first")
    option_texts = [_options_label(s) if show_options else None for s in segments]
    if ax is None:
        from matplotlib.figure import Figure

        row_height = ROW_HEIGHT_WITH_OPTIONS if any(option_texts) else ROW_HEIGHT
        figure = Figure(figsize=(8, 1.2 + row_height * len(segments)))
        # The axes are off: the whole figure is the ladder's, so the lanes get the width.
        figure.subplots_adjust(left=0.02, right=0.98, bottom=0.02, top=0.98)
        ax = figure.add_subplot()
    # Without a SYN (a capture started late) the first segment's sender is drawn on the left.
    syn = first_syn(segments) or segments[0]
    client, server = syn.src, syn.dst
    x_of = {client: 0.0, server: 1.0}
    isns = initial_sequence_numbers(segments)
    modelled = states_with_losses(segments, lost) if lost else states_after_each(segments)
    measured = _measured_states(segments, states) if states else [{} for _ in segments]
    artists = LadderArtists(axes=ax)
    bottom = len(segments) - 1 + ARRIVAL_DROP + 0.3
    for x, (host, port), name in ((0.0, client, "client"), (1.0, server, "server")):
        artists.lanes += ax.plot([x, x], [-0.3, bottom], color=LANE_COLOUR, linewidth=1.5)
        artists.lane_labels.append(
            ax.text(x, -0.45, f"{name}\n{host}:{port}", ha="center", va="bottom", fontsize=9)
        )
    start = segments[0].time
    for row, segment in enumerate(segments):
        from_x = x_of.get(segment.src, 0.0)
        to_x = 1.0 - from_x
        colour = CLIENT_TO_SERVER_COLOUR if from_x == 0.0 else SERVER_TO_CLIENT_COLOUR
        arrival = row + ARRIVAL_DROP
        artists.arrows.append(
            ax.annotate(
                "",
                xy=(to_x, arrival),
                xytext=(from_x, row),
                arrowprops={"arrowstyle": "-|>", "color": colour, "linewidth": 1.5},
            )
        )
        if row in lost:
            artists.lost_marks += draw_lost(ax, artists.arrows[-1], from_x, row, colour)
        artists.arrow_labels.append(
            ax.text(
                0.5,
                row + ARRIVAL_DROP / 2,
                _label(segment, isns),
                ha="center",
                va="center",
                fontsize=8,
                color=colour,
                zorder=4,
                bbox=LABEL_BOX,
            )
        )
        if option_texts[row]:
            # Offset in points from the label's centre, so it sits under it at any figure size.
            artists.option_labels.append(
                ax.annotate(
                    option_texts[row],
                    xy=(0.5, row + ARRIVAL_DROP / 2),
                    xytext=(0, -OPTIONS_BELOW_POINTS),
                    textcoords="offset points",
                    ha="center",
                    va="top",
                    fontsize=7,
                    color=colour,
                    zorder=4,
                    bbox=LABEL_BOX,
                )
            )
        if show_times:
            previous = segments[row - 1].time - start if row else None
            time_text = _time_text(segment.time - start, previous)
            artists.time_labels.append(
                ax.text(TIMES_AT, row, time_text, ha="right", va="center", fontsize=7)
            )
        for side, x, align, offset in (
            ("client", 0.0, "right", -0.04),
            ("server", 1.0, "left", 0.04),
        ):
            state = measured[row].get(side)
            style = "normal"
            if state is None:
                state = modelled[row][0 if side == "client" else 1]
                style = "italic"
            if state is None:
                continue
            artists.state_labels.append(
                ax.text(
                    x + offset,
                    arrival,
                    state.rfc_name,
                    ha=align,
                    va="center",
                    fontsize=8,
                    color=STATE_COLOUR,
                    style=style,
                )
            )
    ax.set_xlim(TIMES_AT - 0.2, 1.42)
    ax.set_ylim(bottom + 0.2, -1.0)  # time runs downwards
    ax.set_axis_off()
    return artists
