"""Draw a ladder diagram of captured (or modelled) segments on a matplotlib Axes.

Client on the left, server on the right, time downwards: one arrow per segment, labelled with
its flags and seq/ack both absolute and relative to each side's ISN, and each end's state written
beside its line after each segment. States come from ``states`` samples where they were measured
(upright text) and from the TCP model elsewhere (italic text).
Rules: matplotlib is imported only inside ``plot_ladder``; object API only (no pyplot, no show,
no savefig, no rcParams); the caller gets the artists back.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..model.packets import Segment, first_syn, initial_sequence_numbers, relative_seq_ack
from ..model.replay import states_after_each
from ..model.states import TcpState

# Okabe-Ito colours, distinguishable with the common colour-vision deficiencies.
CLIENT_TO_SERVER_COLOUR = "#0072B2"  # blue
SERVER_TO_CLIENT_COLOUR = "#D55E00"  # vermillion
LANE_COLOUR = "#000000"
STATE_COLOUR = "#009E73"  # bluish green
ARRIVAL_DROP = 0.7  # an arrow lands this many rows below where it leaves: time passes


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


def _label(segment: Segment, isns: dict) -> str:
    relative_seq, relative_ack = relative_seq_ack(segment, isns)
    absolute = f"seq={segment.seq}"
    relative = f"seq={relative_seq}"
    if segment.has("ACK"):
        absolute += f" ack={segment.ack}"
        relative += f" ack={relative_ack}" if relative_ack is not None else ""
    if segment.payload_len:
        absolute += f" len={segment.payload_len}"
    return f"{segment.flags}  {absolute}\nrelative to ISN: {relative}"


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


def _time_text(offset: float) -> str:
    if offset >= 0.1:
        return f"+{offset:.3f} s"
    return f"+{offset * 1e6:.0f} µs"


def plot_ladder(
    segments: list[Segment], ax=None, states=None, *, show_times: bool = True
) -> LadderArtists:
    """Draw the ladder on ``ax`` (a new Figure's Axes if None) and return the artists.

    ``states``: optional (time, 'client' or 'server', TcpState) samples, e.g. Capture.states.
    ``show_times``: write each segment's time since the first; pass False for the model's
    segments, whose times are only step numbers.
    """
    if not segments:
        raise ValueError("there are no segments to draw: capture a handshake first")
    if ax is None:
        from matplotlib.figure import Figure

        ax = Figure(figsize=(8, 1.2 + 0.75 * len(segments))).add_subplot()
    # Without a SYN (a capture started late) the first segment's sender is drawn on the left.
    syn = first_syn(segments) or segments[0]
    client, server = syn.src, syn.dst
    x_of = {client: 0.0, server: 1.0}
    isns = initial_sequence_numbers(segments)
    modelled = states_after_each(segments)
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
        artists.arrow_labels.append(
            ax.text(
                0.5,
                row + ARRIVAL_DROP / 2,
                _label(segment, isns),
                ha="center",
                va="center",
                fontsize=8,
                color=colour,
                bbox={"facecolor": "white", "edgecolor": "none", "alpha": 0.85, "pad": 1},
            )
        )
        if show_times:
            time_text = _time_text(segment.time - start)
            artists.time_labels.append(
                ax.text(-0.6, row, time_text, ha="right", va="center", fontsize=7)
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
    ax.set_xlim(-0.85, 1.6)
    ax.set_ylim(bottom + 0.2, -1.0)  # time runs downwards
    ax.set_axis_off()
    return artists
