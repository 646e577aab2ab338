"""The recorder's events and what can be computed from them, with no sockets and no clock.

An Event is one thing that happened at a monotonic time in nanoseconds: a socket call
made ("call"), returning ("return") or raising ("error"), or a change of kernel state seen
on one socket ("state"). A Recording is the ordered list of them; from it come the state
spans and call spans that the plots draw, the text timeline the command line prints and a
listener's accept-queue lengths. Events round-trip through JSON.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable

from ..kernel.tcp_info import AcceptQueue
from ..model.states import TcpState

CALL, RETURN, ERROR, STATE = "call", "return", "error", "state"
KINDS = (CALL, RETURN, ERROR, STATE)


@dataclasses.dataclass(frozen=True)
class Event:
    """One call, return, error or kernel state change on one lane (one socket)."""

    time_ns: int
    kind: str
    lane: str
    name: str
    actor: str = "kernel"
    detail: str = ""

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"event kind must be one of {KINDS}, got {self.kind!r}")


@dataclasses.dataclass(frozen=True)
class LaneState:
    """One lane's socket as the kernel last reported it.

    ``queue`` is a listener's accept queue; ``accepted`` is False for the server's side of a
    connection no accept() has taken yet; ``gone`` is True once the connection has left the
    kernel (its state is then CLOSED).
    """

    lane: str
    state: TcpState | None
    accepted: bool = True
    queue: AcceptQueue | None = None
    gone: bool = False

    @property
    def note(self) -> str:
        """What a learner reads beside the state: the queue, 'not accepted', or 'gone'."""
        return describe_lane(self.queue, self.accepted, self.gone)


def describe_lane(queue: AcceptQueue | None, accepted: bool, gone: bool) -> str:
    """The words for a lane's queue, accepted and gone fields ('' when there is nothing)."""
    if gone:
        return "gone from the kernel"
    if queue is not None:
        return f"queue {queue.length}/{queue.maximum}"
    return "" if accepted else "not accepted"


@dataclasses.dataclass(frozen=True)
class StateSpan:
    """A lane held `state` (a Linux name such as SYN_SENT) from start_ns until end_ns."""

    lane: str
    state: str
    start_ns: int
    end_ns: int
    detail: str = ""


@dataclasses.dataclass(frozen=True)
class CallSpan:
    """A socket call on a lane: when it was made and when it returned (None: still blocked)."""

    lane: str
    actor: str
    name: str
    call_ns: int
    return_ns: int | None
    outcome: str
    failed: bool = False


@dataclasses.dataclass(frozen=True)
class Recording:
    """Everything a Recorder saw, in time order."""

    events: tuple[Event, ...]
    start_ns: int
    end_ns: int

    @classmethod
    def from_events(cls, events: Iterable[Event], start_ns: int, end_ns: int) -> Recording:
        ordered = tuple(sorted(events, key=lambda event: event.time_ns))
        return cls(ordered, start_ns, max([end_ns, *(e.time_ns for e in ordered)]))

    def lanes(self) -> list[str]:
        """Lane names in order of first appearance, listeners first."""
        seen = list(dict.fromkeys(event.lane for event in self.events))
        return sorted(seen, key=lambda lane: (not lane.startswith("listener"), seen.index(lane)))

    def state_spans(self) -> list[StateSpan]:
        """Each lane's states as spans; the last state of a lane lasts until the recording ends."""
        spans: list[StateSpan] = []
        current: dict[str, Event] = {}
        for event in self.events:
            if event.kind != STATE:
                continue
            previous = current.get(event.lane)
            if previous is not None:
                spans.append(_span(previous, event.time_ns))
            current[event.lane] = event
        spans.extend(_span(event, self.end_ns) for event in current.values())
        return sorted(spans, key=lambda span: (span.start_ns, span.lane))

    def call_spans(self) -> list[CallSpan]:
        """Every call with its return (or error); a call still blocked has return_ns None."""
        spans: list[CallSpan] = []
        pending: dict[tuple[str, str], list[Event]] = {}
        for event in self.events:
            key = (event.lane, event.name)
            if event.kind == CALL:
                pending.setdefault(key, []).append(event)
            elif event.kind in (RETURN, ERROR) and pending.get(key):
                call = pending[key].pop(0)
                spans.append(CallSpan(event.lane, call.actor, call.name, call.time_ns,
                                      event.time_ns, event.detail, event.kind == ERROR))
        for calls in pending.values():
            spans.extend(CallSpan(c.lane, c.actor, c.name, c.time_ns, None, "still blocked")
                         for c in calls)
        return sorted(spans, key=lambda span: span.call_ns)

    def states_of(self, lane: str) -> list[str]:
        """The states a lane went through, in order (Linux names)."""
        return [e.name for e in self.events if e.kind == STATE and e.lane == lane]

    def queue_lengths(self, lane: str = "listener") -> list[int]:
        """The accept-queue lengths seen on a listener's lane, in time order.

        The recorder writes a LISTEN socket's accept queue in its state event's detail as
        'queue LENGTH/MAXIMUM'; other events, and LISTEN events without it, are skipped.
        """
        lengths = []
        for event in self.events:
            if event.kind != STATE or event.lane != lane or event.name != "LISTEN":
                continue
            words = event.detail.split()
            if len(words) == 2 and words[0] == "queue" and "/" in words[1]:
                lengths.append(int(words[1].split("/")[0]))
        return lengths

    def first(self, kind: str, lane: str, name: str) -> Event | None:
        """The first event of this kind, lane and name, or None."""
        return next((e for e in self.events
                     if e.kind == kind and e.lane == lane and e.name == name), None)

    def to_json(self) -> str:
        return json.dumps({
            "start_ns": self.start_ns,
            "end_ns": self.end_ns,
            "events": [dataclasses.asdict(event) for event in self.events],
        })

    @classmethod
    def from_json(cls, text: str) -> Recording:
        data = json.loads(text)
        return cls(tuple(Event(**event) for event in data["events"]),
                   data["start_ns"], data["end_ns"])

    def as_text(self) -> str:
        """A table of the events, times in milliseconds from the start of the recording."""
        lines = [f"{'time':>10}  {'lane':<10} {'who':<7} what"]
        for event in self.events:
            milliseconds = (event.time_ns - self.start_ns) / 1e6
            what = {
                CALL: f"{event.name} called",
                RETURN: f"{event.name} returned {event.detail}".rstrip(),
                ERROR: f"{event.name} raised {event.detail}",
                STATE: f"state {event.name} {event.detail}".rstrip(),
            }[event.kind]
            lines.append(f"{milliseconds:8.3f} ms  {event.lane:<10} {event.actor:<7} {what}")
        return "\n".join(lines)


def _span(event: Event, end_ns: int) -> StateSpan:
    return StateSpan(event.lane, event.name, event.time_ns, end_ns, event.detail)
