"""What a capture holds and where it came from: `Tier`, `Capture` and its JSON form, `state_at`.

Pure: no sockets, no clock, no files. ``Capture.to_json`` / ``Capture.from_json`` are the one
place that writes and reads a capture as text: the namespace child's report to its parent and
the JSON sidecar of the capture shipped with the lab both go through them. Segments travel as
the hex of their frames (``encode_frame``, which ``decode_frame`` reads back to equal Segments);
the shipped capture leaves them out, since its pcap file holds them.
A capture of the SAVED_SYN tier holds one real segment, the client's SYN, and each end's
segment counts after the handshake: ``every_segment`` is False, and nothing may draw the
segments it lacks.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field

from ..kernel.segment_counts import SegmentCounts
from ..model.packets import DecodeError, Segment, decode_frame, encode_frame
from ..model.states import TcpState

__all__ = ["Capture", "StateSample", "Tier", "state_at"]

#: (epoch time, 'client' or 'server', the state that end was seen entering at that time).
StateSample = tuple[float, str, TcpState]


class Tier(enum.Enum):
    """Where a capture's packets come from, best evidence first."""

    LIVE = "live"
    NAMESPACE = "namespace"
    SAVED_SYN = "saved-syn"  # the client's SYN (TCP_SAVED_SYN) and counters (TCP_INFO) only
    SHIPPED = "shipped"


@dataclass(frozen=True)
class Capture:
    """A captured handshake: the segments, where they come from and why, and sampled states.

    ``states`` holds a StateSample whenever an end's state changed (slow motion only);
    ``recorded_on`` is (date, kernel release) for the capture shipped with the lab.
    ``counts`` ('client' and 'server', the accepted socket) are each end's segment counts
    after the handshake, kept in the SAVED_SYN tier, where ``segments`` is the SYN alone.
    """

    segments: list[Segment]
    tier: Tier
    explanation: str
    states: list[StateSample] = field(default_factory=list)
    recorded_on: tuple[str, str] | None = None
    slow_motion: bool = False
    counts: dict[str, SegmentCounts] = field(default_factory=dict)

    @property
    def every_segment(self) -> bool:
        """Whether ``segments`` hold the whole conversation (not in the SAVED_SYN tier)."""
        return self.tier is not Tier.SAVED_SYN

    def to_json(self, *, with_segments: bool = True, indent: int | None = None) -> str:
        """This capture as one JSON object; ``with_segments=False`` leaves the frames out."""
        date, kernel = self.recorded_on or (None, None)
        data: dict[str, object] = {
            "recorded_on": date,
            "kernel": kernel,
            "tier": self.tier.value,
            "slow_motion": self.slow_motion,
            "explanation": self.explanation,
            "states": [[time, side, state.name] for time, side, state in self.states],
        }
        if self.counts:  # only then: the shipped sidecars stay as they were written
            data["counts"] = {side: asdict(counts) for side, counts in self.counts.items()}
        if with_segments:
            data["frames"] = [[s.time, encode_frame(s).hex()] for s in self.segments]
        return json.dumps(data, indent=indent)

    @classmethod
    def from_json(cls, text: str, segments: Iterable[Segment] | None = None) -> Capture:
        """Read what ``to_json`` wrote; ``segments`` are needed when it left them out."""
        try:
            data = json.loads(text)
            frames = data.get("frames")
            if frames is not None:
                segments = [decode_frame(bytes.fromhex(frame), time) for time, frame in frames]
            date, kernel = data.get("recorded_on"), data.get("kernel")
            capture = cls(
                segments=list(segments or ()),
                tier=Tier(data["tier"]),
                explanation=data["explanation"],
                states=[(time, side, TcpState[name]) for time, side, name in data["states"]],
                recorded_on=(date, kernel) if date is not None else None,
                slow_motion=bool(data.get("slow_motion", False)),
                counts={
                    side: SegmentCounts(**counts) for side, counts in data.get("counts", {}).items()
                },
            )
        except DecodeError as error:
            raise ValueError(f"a frame in this capture's JSON is broken: {error}") from None
        except (AttributeError, KeyError, TypeError, ValueError) as error:
            raise ValueError(f"this is not a capture's JSON: {error!r}") from None
        if frames is None and segments is None:
            raise ValueError(
                "this capture's JSON holds no frames: pass its segments (read from its pcap file)"
            )
        return capture


def state_at(states: Iterable[StateSample], side: str, time: float) -> TcpState | None:
    """The state ``side`` ('client' or 'server') was last seen in at or before ``time``.

    ``states`` are a Capture's samples, each taken when a state changed; None if that side
    had not been sampled yet.
    """
    seen = [(t, state) for t, who, state in states if who == side and t <= time]
    return max(seen, key=lambda sample: sample[0])[1] if seen else None
