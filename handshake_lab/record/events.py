"""The recorder's events and what can be computed from them, with no sockets and no clock.

An Event is one thing that happened at a monotonic time in nanoseconds on one lane (one
socket): a socket call made ("call"), returning ("return") or raising ("error"), or a change
of kernel state ("state"). A call's `detail` is words for a reader (what it returned, the
error). A state event carries typed fields, never words to parse back: `state` (a TcpState),
`accepted` (False for the server's side of a connection no accept() has taken yet), `queue`
(a listener's accept queue) and `gone` (the connection has left the kernel: its state is
then CLOSED); `describe_lane` is the one place those fields become words. A Recording is
the ordered list of events; from it come the state spans and call spans the plots draw, the
text timeline the command line prints and a listener's accept-queue lengths. Lanes are named
by role and number ('listener', 'client', 'client 2', 'server 1', ...): the server's side of
connection N is 'server N', made by the kernel during client N's connect(). A Recording
round-trips through JSON, states by their Linux names.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable

from ..kernel.lookup import lists_sockets_no_process_holds
from ..kernel.segment_counts import SegmentCounts
from ..kernel.tcp_info import AcceptQueue
from ..model.states import TcpState

CALL, RETURN, ERROR, STATE = "call", "return", "error", "state"
KINDS = (CALL, RETURN, ERROR, STATE)


class _KernelFields:
    """What a lane state, a state event and a state span say with accepted, queue and gone."""

    __slots__ = ()
    accepted: bool
    queue: AcceptQueue | None
    gone: bool

    @property
    def note(self) -> str:
        """What a learner reads beside the state: the queue, 'not accepted', or 'gone'."""
        return describe_lane(self.queue, self.accepted, self.gone)

    @property
    def awaiting_accept(self) -> bool:
        """The server's side of a connection the kernel holds and no accept() has taken yet."""
        return not self.accepted and not self.gone


@dataclasses.dataclass(frozen=True)
class Event(_KernelFields):
    """One call, return, error or kernel state change on one lane (one socket).

    A call's `name` is the call (``connect()``) and `detail` what it returned or raised. A
    state event is named by its state's Linux name and has no detail: make it with
    `Event.of_state`, or give ``state=`` (and ``accepted``, ``queue``, ``gone``).
    """

    time_ns: int
    kind: str
    lane: str
    name: str = ""
    actor: str = "kernel"
    detail: str = ""
    state: TcpState | None = None
    accepted: bool = True
    queue: AcceptQueue | None = None
    gone: bool = False

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"event kind must be one of {KINDS}, got {self.kind!r}")
        if self.kind != STATE:
            if self.state is not None or self.queue is not None or self.gone or not self.accepted:
                raise ValueError("only a state event has state, accepted, queue and gone fields")
            return
        if not isinstance(self.state, TcpState):
            raise ValueError(f"a state event needs state=TcpState.<NAME>, got {self.state!r}")
        if self.name not in ("", self.state.linux_name):
            raise ValueError(
                f"a state event is named by its state, {self.state.linux_name!r}, not {self.name!r}"
            )
        if self.detail:
            raise ValueError(
                "a state event has no detail: its accepted, queue and gone fields say it"
            )
        if self.queue is not None and self.state is not TcpState.LISTEN:
            raise ValueError(f"only a LISTEN socket has an accept queue, not {self.state.name}")
        object.__setattr__(self, "name", self.state.linux_name)

    @classmethod
    def of_state(
        cls,
        time_ns: int,
        lane: str,
        state: TcpState,
        *,
        accepted: bool = True,
        queue: AcceptQueue | None = None,
        gone: bool = False,
    ) -> Event:
        """A kernel state change seen on `lane`."""
        return cls(
            time_ns, STATE, lane, state.linux_name, "kernel", "", state, accepted, queue, gone
        )


@dataclasses.dataclass(frozen=True)
class LaneState(_KernelFields):
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
    #: The segments its socket has sent and received so far (TCP_INFO), where it is held open.
    segments: SegmentCounts | None = None

    @property
    def status(self) -> str:
        """The words beside the state in a table: a server side waiting for accept() is
        'in the kernel, not yet accepted', or 'no server side' when the kernel has none (on a
        platform that lists only the sockets a process holds: no process holds it yet)."""
        if self.awaiting_accept:
            if self.state:
                return "in the kernel, not yet accepted"
            return (
                "no server side" if lists_sockets_no_process_holds() else "no process holds it yet"
            )
        return self.note


def lane_role_and_number(lane: str) -> tuple[str, int]:
    """A lane's role and number: 'client' is ('client', 1), 'client 2' ('client', 2),
    'server 1' ('server', 1); a name that does not end in a number is number 1."""
    role, _, number = lane.rpartition(" ")
    if role and number.isdigit():
        return role, int(number)
    return lane, 1


def describe_lane(queue: AcceptQueue | None, accepted: bool, gone: bool) -> str:
    """The words for a lane's queue, accepted and gone fields ('' when there is nothing)."""
    if gone:
        return "gone from the kernel"
    if queue is not None:
        return f"queue {queue.length}/{queue.maximum}"
    return "" if accepted else "not accepted"


@dataclasses.dataclass(frozen=True)
class StateSpan(_KernelFields):
    """A lane held `state` (with these accepted, queue and gone fields) from start_ns to end_ns."""

    lane: str
    state: TcpState
    start_ns: int
    end_ns: int
    accepted: bool = True
    queue: AcceptQueue | None = None
    gone: bool = False


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
                spans.append(
                    CallSpan(
                        event.lane,
                        call.actor,
                        call.name,
                        call.time_ns,
                        event.time_ns,
                        event.detail,
                        event.kind == ERROR,
                    )
                )
        for calls in pending.values():
            spans.extend(
                CallSpan(c.lane, c.actor, c.name, c.time_ns, None, "still blocked") for c in calls
            )
        return sorted(spans, key=lambda span: span.call_ns)

    def first_known_ns(self, lane: str) -> int | None:
        """When the recording first knows of the lane's socket (None: no event on it).

        That is the lane's first event; for the server's side of connection N it is client
        N's first connect() call if that came earlier: the kernel makes that side during it.
        """
        times = [event.time_ns for event in self.events if event.lane == lane]
        role, number = lane_role_and_number(lane)
        if role == "server":
            times += [
                event.time_ns
                for event in self.events
                if event.kind == CALL
                and event.name.endswith("connect()")
                and lane_role_and_number(event.lane) == ("client", number)
            ][:1]
        return min(times, default=None)

    def states_of(self, lane: str) -> list[str]:
        """The states a lane went through, in order, by the Linux names ss prints."""
        return [e.name for e in self.events if e.kind == STATE and e.lane == lane]

    def queue_lengths(self, lane: str = "listener") -> list[int]:
        """The accept-queue lengths seen on a listener's lane, in time order."""
        return [
            e.queue.length
            for e in self.events
            if e.kind == STATE and e.lane == lane and e.queue is not None
        ]

    def first(self, kind: str, lane: str, name: str) -> Event | None:
        """The first event of this kind, lane and name, or None."""
        return next(
            (e for e in self.events if e.kind == kind and e.lane == lane and e.name == name), None
        )

    def to_json(self) -> str:
        return json.dumps(
            {
                "start_ns": self.start_ns,
                "end_ns": self.end_ns,
                "events": [_event_to_dict(event) for event in self.events],
            }
        )

    @classmethod
    def from_json(cls, text: str) -> Recording:
        data = json.loads(text)
        return cls(
            tuple(_event_from_dict(event) for event in data["events"]),
            data["start_ns"],
            data["end_ns"],
        )

    def as_text(self) -> str:
        """A table of the events, times in milliseconds from the start of the recording."""
        lines = [f"{'time':>10}  {'lane':<10} {'who':<7} what"]
        for event in self.events:
            milliseconds = (event.time_ns - self.start_ns) / 1e6
            what = {
                CALL: f"{event.name} called",
                RETURN: f"{event.name} returned {event.detail}".rstrip(),
                ERROR: f"{event.name} raised {event.detail}",
                STATE: f"state {event.name} {event.note}".rstrip(),
            }[event.kind]
            lines.append(f"{milliseconds:8.3f} ms  {event.lane:<10} {event.actor:<7} {what}")
        return "\n".join(lines)


def _span(event: Event, end_ns: int) -> StateSpan:
    return StateSpan(
        event.lane, event.state, event.time_ns, end_ns, event.accepted, event.queue, event.gone
    )


def _event_to_dict(event: Event) -> dict:
    fields = {
        "time_ns": event.time_ns,
        "kind": event.kind,
        "lane": event.lane,
        "name": event.name,
        "actor": event.actor,
        "detail": event.detail,
    }
    if event.kind == STATE:
        fields.update(
            state=event.state.linux_name,
            accepted=event.accepted,
            gone=event.gone,
            queue=None if event.queue is None else list(event.queue),
        )
    return fields


def _event_from_dict(fields: dict) -> Event:
    fields = dict(fields)
    if fields.get("state") is not None:
        fields["state"] = TcpState.from_name(fields["state"])
        if fields.get("queue") is not None:
            fields["queue"] = AcceptQueue(*fields["queue"])
    return Event(**fields)
