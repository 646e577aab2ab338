"""The stepper: one real socket call per step, on loopback, with the kernel's view after each.

Client and server live in this one process. Each step performs exactly one socket call
(listen, connect, accept, send, recv or close; see `calls`) and returns a Snapshot: every
lab socket with its kernel state, the listener's accept queue, what the call returned, and
one line per kernel action (whose socket, what its kernel did, its state change).

Rules:

- A run of a scenario is a generation: its Recorder, sniffer, sockets and workers are
  entered in one ExitStack. reset() starts a new generation and closes the old one; close()
  closes the last. A worker whose generation was replaced touches nothing when it wakes.
- A call that may block (connect to a full queue, accept with nothing queued, recv with
  nothing to read) waits STEP_GRACE in the caller's thread, then in a worker of the
  generation's `Background`, in a selector on its socket and the Background's wake_socket,
  never longer than STEP_BLOCK_TIMEOUT, so a notebook never freezes. cancel() stops that
  Background (the next blocked call gets a fresh one); a worker's error is raised again by
  wait(), cancel(), reset() or close().
- A call that did nothing the scenario goes on from (a refused connect(), whose socket is
  closed; an abandoned call) is offered again, so free order has no dead ends; a blocked
  call's snapshot says what will end its wait (`Snapshot.waiting`).
- One lock orders steps, workers' endings and snapshots. A step's snapshot is taken under
  the lock that performed the step, so a blocked call finishing meanwhile cannot replace it.

No UI here: show/stepper_widget.py draws it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import selectors
import socket
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, NamedTuple

from ..kernel.lookup import absent_words
from ..kernel.segment_counts import SegmentCounts
from ..kernel.tcp_info import AcceptQueue
from ..model.addresses import Address
from ..model.packets import Segment
from ..model.states import TcpState
from ..net.background import Background
from ..record.events import LaneState, Recording
from ..record.recorder import Recorder
from ..timeouts import poll_until
from .calls import Action, Blocked, Outcome, ScenarioSockets, told
from .scenarios import Scenario, Step, scenario_named, scenario_to_run

if TYPE_CHECKING:
    from ..capture.sniffer import LoopbackSniffer

#: How long a blocked step may wait before it gives up (a dropped SYN is retried by the
#: kernel for about two minutes; a learner may take a while to click accept()).
STEP_BLOCK_TIMEOUT = 180.0
#: How long a step waits in the caller's thread before it hands the wait to a worker.
STEP_GRACE = 0.02
#: How long a snapshot waits for the capture thread to read as many segments as the model
#: says the step sent (they are already queued on its socket; only a busy machine delays
#: the thread, and the wait ends as soon as they are read).
PACKET_GRACE = 0.5
#: How long a step waits for the kernel to reach the states its explanation claims: Linux
#: holds the ACK of a FIN back for at most TCP_DELACK_MAX (200 ms), so this bounds it.
STEP_SETTLE_TIMEOUT = 0.5


@dataclasses.dataclass(frozen=True)
class Snapshot:
    """Everything the learner sees after a step."""

    scenario: str
    step: str | None
    result: str
    explanation: str
    sockets: tuple[LaneState, ...]
    accept_queue: AcceptQueue | None
    pending: tuple[str, ...]
    next_steps: tuple[str, ...]
    finished: bool
    #: The segments captured on the wire since the step began (live capture only, else ()).
    packets: tuple[Segment, ...] = ()
    #: (lane, state) the explanation claims once the kernel has settled; () while blocked.
    claims: tuple[tuple[str, TcpState], ...] = ()
    #: The flags of each segment the explanation says the step put on the wire, in order.
    sent: tuple[str, ...] = ()
    #: (lane, segments its socket sent and received since the step began), from TCP_INFO, for
    #: each socket held open; on every Linux machine, root or not.
    segments: tuple[tuple[str, SegmentCounts], ...] = ()
    #: What the kernels did in the step, one Action each (the explanation's lines).
    actions: tuple[Action, ...] = ()
    #: What the call itself did or waits for, beyond the kernels' actions.
    note: str = ""
    #: For each blocked call, what will end its wait: "server.accept(): A client's ...".
    waiting: tuple[str, ...] = ()
    #: The steps taken so far (a refused connect() is not: it is offered again).
    taken: tuple[str, ...] = ()

    def segments_of(self, lane: str) -> SegmentCounts | None:
        """What one lane's socket sent and received during the step (None: not counted)."""
        return dict(self.segments).get(lane)

    def state_of(self, lane: str) -> TcpState | None:
        """The kernel state of one lane ('listener', 'client', 'server 1', ...)."""
        return next((view.state for view in self.sockets if view.lane == lane), None)

    def note_of(self, view: LaneState) -> str:
        """The words beside a lane's state: the listener's queue in words, else its status."""
        if view.queue is not None and self.accept_queue is not None:
            return self.queue_text()
        return view.status

    def queue_text(self) -> str:
        """The accept queue in words, e.g. '1 waiting to be accepted; listen(0) admits up to 1'.

        Linux counts the queue full only when its length exceeds the backlog, so listen(n)
        admits n + 1 finished connections (measured on real sockets: tests/test_stepper.py).
        """
        queue = self.accept_queue
        if queue is None:
            return "nothing listens"
        asked = scenario_named(self.scenario).backlog
        backlog = f"listen({asked})"
        if queue.maximum != asked:
            backlog += f", capped at {queue.maximum} by net.core.somaxconn,"
        return f"{queue.length} waiting to be accepted; {backlog} admits up to {queue.maximum + 1}"

    def as_text(self) -> str:
        lines = [f"after {self.step or 'nothing yet'}: {self.result}"]
        counted = dict(self.segments)
        for view in self.sockets:
            # One word per state, the RFC's (the Linux name is in data-state / linux_name).
            state = view.state.rfc_name if view.state else absent_words()
            during = f"[{counted[view.lane]}]" if view.lane in counted else ""
            note = self.note_of(view)
            lines.append(f"  {view.lane:<10} {state:<18} {during:<22} {note}".rstrip())
        return "\n".join(lines + [self.explanation] + list(self.waiting))


class _Waiting(NamedTuple):
    """A blocked call and the worker thread waiting for it."""

    blocked: Blocked
    thread: threading.Thread


@dataclasses.dataclass(eq=False)
class _Generation:
    """One run of a scenario: everything reset() replaces, closed by one ExitStack."""

    scenario: Scenario
    stack: contextlib.ExitStack
    recorder: Recorder
    calls: ScenarioSockets
    sniffer: LoopbackSniffer | None
    packets_note: str
    workers: Background
    last: Outcome
    pending: dict[str, _Waiting] = dataclasses.field(default_factory=dict)
    taken: list[str] = dataclasses.field(default_factory=list)
    packets_from: int = 0  # how many segments the sniffer held when the last step began
    # Each lane's segment counters when the last step began (None: not held open then).
    counts_before: dict[str, SegmentCounts | None] = dataclasses.field(default_factory=dict)


class Stepper:
    """Perform a scenario one real socket call at a time; see the module docstring.

    `in_order=True` offers only the scenario's next step; `in_order=False` offers every
    step the sockets allow now, so accept() can be called before connect() (and blocks).
    `on_change` is called (from a worker thread) when a blocked call finishes.
    """

    def __init__(
        self,
        scenario: str = "basic",
        *,
        in_order: bool = True,
        on_change: Callable[[Snapshot], None] | None = None,
        capture_packets: bool = True,
    ) -> None:
        chosen = scenario_to_run(scenario)
        self.in_order = in_order
        self.on_change = on_change
        self.capture_packets = capture_packets
        self._lock = threading.RLock()
        self._closed = False
        self._run = self._open(chosen)

    # -- lifetime -----------------------------------------------------------------------
    def _open(self, scenario: Scenario) -> _Generation:
        """A new generation; exiting its stack stops the workers first, the recorder last."""
        with contextlib.ExitStack() as stack:
            recorder = stack.enter_context(Recorder(follow_helpers=False))
            calls = stack.enter_context(ScenarioSockets(scenario, recorder))
            sniffer, note = self._start_capture(stack, calls.address[1])
            workers = stack.enter_context(Background("stepper"))
            start = told(None, "nothing done yet", (), f"Scenario: {scenario.summary}")
            return _Generation(
                scenario, stack.pop_all(), recorder, calls, sniffer, note, workers, start
            )

    def _start_capture(
        self, stack: contextlib.ExitStack, port: int
    ) -> tuple[LoopbackSniffer | None, str]:
        """Capture the lab's packets where this process may (root or CAP_NET_RAW)."""
        if not self.capture_packets:
            return None, "Packet capture is off for this stepper (capture_packets=False)."
        from ..capture.sniffer import sniffer_or_why_not

        sniffer, why_not = sniffer_or_why_not(stack, port)
        if sniffer is None:
            return None, (
                f"Packets are not shown here: {why_not}. "
                "capture_handshake() shows real packets without them."
            )
        return sniffer, ""

    def close(self) -> None:
        """Cancel pending calls, close every socket, join every thread (idempotent)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            run = self._run
        run.stack.close()  # without the lock: blocked workers take it on their way out

    def reset(self, scenario: str | None = None, *, in_order: bool | None = None) -> Snapshot:
        """Start again (optionally with another scenario, or in or out of order) with fresh
        sockets."""
        chosen = scenario_to_run(scenario) if scenario is not None else None
        self._require_open()
        fresh = self._open(chosen or self.scenario)
        with self._lock:
            if self._closed:  # close() came in meanwhile: the fresh one goes too
                old = fresh
            else:
                old, self._run = self._run, fresh
                if in_order is not None:
                    self.in_order = in_order
        old.stack.close()  # its workers wake, find their generation replaced, and return
        self._require_open()
        return self.snapshot()

    def __enter__(self) -> Stepper:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _require_open(self) -> None:
        if self._closed:
            raise RuntimeError("this stepper is closed: make a new Stepper()")

    @property
    def closed(self) -> bool:
        """True once close() was called: nothing more can be stepped."""
        return self._closed

    # -- what the current generation holds ------------------------------------------------
    @property
    def scenario(self) -> Scenario:
        return self._run.scenario

    @property
    def address(self) -> Address:
        """Where the scenario's listener is bound (port 0 read back)."""
        return self._run.calls.address

    @property
    def packets_note(self) -> str:
        """Why no packets are shown, in one sentence ('' when they are captured)."""
        return self._run.packets_note

    @property
    def recording(self) -> Recording:
        return self._run.recorder.recording

    @property
    def steps(self) -> tuple[Step, ...]:
        return self.scenario.steps

    # -- what can be done next ------------------------------------------------------------
    def available(self) -> list[Step]:
        """The steps the learner may take now."""
        with self._lock:
            return self._available(self._run)

    def _available(self, run: _Generation) -> list[Step]:
        remaining = [s for s in run.scenario.steps if s.label not in run.taken]
        if self.in_order:
            remaining = remaining[:1]
        return [step for step in remaining if self._possible(run, step)]

    @staticmethod
    def _possible(run: _Generation, step: Step) -> bool:
        if step.target in run.pending or (step.call == "accept" and "server" in run.pending):
            return False
        if step.call == "connect":
            return True
        if step.call == "accept":
            return run.calls.listener_open
        return run.calls.is_open(step.target)

    # -- taking a step ----------------------------------------------------------------------
    def step(self, label: str | None = None) -> Snapshot:
        """Perform the step called `label` (the next available one when None)."""
        with self._lock:
            self._require_open()
            run = self._run
            available = self._available(run)
            if label is None:
                if not available:
                    raise RuntimeError(self._why_nothing_available(run))
                step = available[0]
            else:
                step = next((s for s in available if s.label == label), None)
                if step is None:
                    raise ValueError(
                        f"{label!r} cannot be taken now; available: "
                        f"{[s.label for s in available] or 'none'}"
                    )
            run.taken.append(step.label)
            if run.sniffer is not None:
                run.packets_from = len(run.sniffer.segments)
            run.counts_before = {view.lane: view.segments for view in run.recorder.lane_states()}
            made = run.calls.perform(step)
            _took(run, self._wait_or_hand_over(run, made) if isinstance(made, Blocked) else made)
            _settle(run)
            return self._snapshot(run)

    @staticmethod
    def _why_nothing_available(run: _Generation) -> str:
        if run.pending:
            labels = ", ".join(waiting.blocked.step.label for waiting in run.pending.values())
            return f"waiting for {labels}: wait() for it, or cancel()"
        return "the scenario is finished: reset() to start again"

    # -- blocking calls ---------------------------------------------------------------------
    def _wait_or_hand_over(self, run: _Generation, blocked: Blocked) -> Outcome:
        """Wait STEP_GRACE here; then hand the wait to a worker (the caller holds the lock)."""
        with selectors.DefaultSelector() as selector:
            selector.register(blocked.sock, blocked.events)
            if selector.select(STEP_GRACE):
                return run.calls.complete(blocked)
        workers = run.workers
        thread = workers.start(
            self._wait_in_worker,
            run,
            workers,
            workers.wake_socket,
            blocked,
            name=f"step-{blocked.step.target}",
        )
        run.pending[blocked.step.target] = _Waiting(blocked, thread)
        return blocked.outcome()

    def _wait_in_worker(
        self, run: _Generation, workers: Background, wake: socket.socket, blocked: Blocked
    ) -> None:
        with selectors.DefaultSelector() as selector:
            selector.register(blocked.sock, blocked.events)
            selector.register(wake, selectors.EVENT_READ)
            ready = selector.select(STEP_BLOCK_TIMEOUT)
        with self._lock:
            if run is not self._run:
                return  # reset() replaced the generation this call belonged to
            del run.pending[blocked.step.target]
            if workers.stopping.is_set():  # cancel() or close()
                _took(run, run.calls.abandon(blocked, "cancelled"))
            elif not ready:
                _took(run, run.calls.abandon(blocked, f"gave up after {STEP_BLOCK_TIMEOUT:g} s"))
            else:
                _took(run, run.calls.complete(blocked))
                _settle(run)
            changed = None if self.on_change is None or self._closed else self._snapshot(run)
        if changed is not None:
            self.on_change(changed)

    def wait(self, timeout: float = STEP_BLOCK_TIMEOUT) -> Snapshot:
        """Wait (bounded) until no call is blocked, then return the snapshot."""
        with self._lock:
            run = self._run
            waiting = list(run.pending.values())
        # One deadline for them all; the workers take the lock on their way out.
        stuck = set(run.workers.join([w.thread for w in waiting], timeout=timeout))
        if stuck:
            labels = [w.blocked.step.label for w in waiting if w.thread.name in stuck]
            raise TimeoutError(f"{', '.join(labels)} is still blocked after {timeout} s")
        run.workers.raise_errors()
        return self.snapshot()

    def cancel(self) -> Snapshot:
        """Abandon every blocked call."""
        with self._lock:
            run = self._run
            workers = run.workers
            if not run.pending:
                return self._snapshot(run)
            workers.stop()
            if not self._closed:  # the next blocked call of this generation gets fresh workers
                run.workers = run.stack.enter_context(Background("stepper"))
        workers.close()  # joins within THREAD_JOIN_TIMEOUT and raises what a worker raised
        return self.snapshot()

    # -- what the kernel says -----------------------------------------------------------
    def snapshot(self) -> Snapshot:
        """The kernel's view of every lab socket now, and what the last step did."""
        with self._lock:
            return self._snapshot(self._run)

    def _snapshot(self, run: _Generation) -> Snapshot:
        last = run.last
        sockets = tuple(run.recorder.lane_states())
        return Snapshot(
            scenario=run.scenario.key,
            step=last.step,
            result=last.result,
            explanation=last.explanation,
            sockets=sockets,
            accept_queue=run.calls.accept_queue(),
            pending=tuple(waiting.blocked.step.label for waiting in run.pending.values()),
            next_steps=tuple(step.label for step in self._available(run)),
            finished=len(run.taken) == len(run.scenario.steps) and not run.pending,
            packets=self._step_packets(run),
            claims=last.claims,
            sent=last.sent,
            segments=_segments_during(run.counts_before, sockets),
            actions=last.actions,
            taken=tuple(run.taken),
            note=last.note,
            waiting=tuple(
                f"{waiting.blocked.step.label}: {run.calls.until(waiting.blocked)}"
                for waiting in run.pending.values()
            ),
        )

    @staticmethod
    def _step_packets(run: _Generation) -> tuple[Segment, ...]:
        """What the sniffer saw since the step began. Loopback delivers within the call, but
        the sniffer thread may still be reading: wait (bounded) for as many segments as the
        TCP model says the step sent."""
        if run.sniffer is None:
            return ()
        expected = run.packets_from + len(run.last.sent)
        run.sniffer.wait_for(lambda segments: len(segments) >= expected, PACKET_GRACE)
        return tuple(run.sniffer.segments[run.packets_from :])


def _took(run: _Generation, outcome: Outcome) -> None:
    """The outcome is the step's last word; a step that must be taken again is offered again."""
    run.last = outcome
    if outcome.again and outcome.step in run.taken:
        run.taken.remove(outcome.step)


def _settle(run: _Generation) -> bool:
    """Wait (bounded) until the kernel shows every lane in the state the step's explanation
    claims, so the table and the explanation describe the same moment (a delayed ACK takes
    a few milliseconds). False when it did not: the table then shows what the kernel shows."""
    claims = dict(run.last.claims)
    if not claims:
        return True

    def agreed() -> bool:
        seen = {view.lane: view for view in run.recorder.lane_states()}
        return all(lane in seen and _shows(seen[lane], state) for lane, state in claims.items())

    return poll_until(agreed, timeout=STEP_SETTLE_TIMEOUT)


def _shows(view: LaneState, state: TcpState) -> bool:
    if state is TcpState.CLOSED:
        return view.gone or view.state in (None, TcpState.CLOSED)
    return view.state is state


def _segments_during(
    before: dict[str, SegmentCounts | None], sockets: tuple[LaneState, ...]
) -> tuple[tuple[str, SegmentCounts], ...]:
    """Each held socket's segments since the step began. A lane that was not there then is a
    socket the step made (a connect()), counted from zero; one that was there uncounted (a
    connection accept() has just taken) is left out: its segments came before the step."""
    during = []
    for view in sockets:
        if view.segments is None:
            continue
        if view.lane not in before:
            during.append((view.lane, view.segments))
        elif before[view.lane] is not None:
            during.append((view.lane, view.segments.since(before[view.lane])))
    return tuple(during)
