"""Record socket calls and the kernel states of the lab's sockets as one ordered timeline.

`with Recorder() as recorder:` subscribes it to the trace hook (`net.trace`): the helpers
in `net` report every call they make to it (call, return or error, with the actor and a monotonic
time in nanoseconds) and register the sockets they open. A sampler thread (a `Background`)
then asks the kernel for the state of each registered connection about every millisecond,
only while recording, and records each change as a typed state event. Rules:

- The sampler keeps that beat while something can change: for IDLE_AFTER seconds after the
  last event (a call, a new lane or a state change), and for as long as a lane is in a state
  the kernel leaves by itself (SYN_SENT, SYN_RECV, FIN_WAIT1, CLOSING, LAST_ACK). Otherwise
  it backs off, each wait BACK_OFF times the last, up to IDLE_INTERVAL; with no lane left
  to watch it sleeps. A recorded call or a new socket wakes it at once, back onto the beat
  (its next sample at the beat's next tick, on a grid from the start of the recording).
  What the back-off costs: a change no recorded call comes before, from a state that is not
  one of those (FIN_WAIT2 ending by its timer, a peer the helpers did not make, a call made
  on the socket object itself rather than through the helpers), is seen up to IDLE_INTERVAL
  late, and missed if it lasts less than the wait it falls in.
- A Recorder nobody holds any more (a Stepper dropped without close()) stops its sampler:
  the thread holds the Recorder only while it samples. A Recorder entered and never left
  stays the helpers' tracer in that context, but a later ``with Recorder():`` takes over for
  its block (the hook is a context variable, see `net.trace`).
- Where a state comes from is `kernel.lookup`'s choice, not the recorder's: its
  `ConnectionLookup` reads a socket we hold (TCP_INFO on Linux) and finds the others by
  their addresses (not yet accepted, or already closed) with prepared sock_diag requests,
  one recvmmsg per batch. Neither cost grows with unrelated sockets on the machine.
- A connection that reached TIME_WAIT or left the kernel is no longer polled: TIME_WAIT
  lasts 60 s on Linux, longer than any recording here. It has left the kernel when a lookup
  by addresses finds it gone (or CLOSE) and a second one right after says so too
  (`kernel.lookup.confirmed_states`): a single one can miss it at the moment the kernel
  replaces an orphaned socket by its FIN-WAIT-2 entry (benchmarks/lookup_while_closing.py).
- The lane of the server's side of a connection exists from the moment the client's
  connect() starts, because the kernel builds that side before any accept().
- Only the sampler thread samples (and `sample()`, called on purpose): recording a call
  costs one tuple appended to a list and a look at whether the sampler must be woken. A
  thread busy in pure Python holds the GIL for up to sys.getswitchinterval() (5 ms), and no
  sample can be taken meanwhile; the other way round, a sampling pass holds the GIL while
  it works through the lanes, and a caller making calls back to back waits for it
  (benchmarks/recorder_overhead.py prints what the caller pays).
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
import weakref

from ..kernel.lookup import ConnectionLookup, confirmed_states
from ..kernel.segment_counts import SegmentCounts, read_counts
from ..kernel.tcp_info import AcceptQueue
from ..model.states import TcpState
from ..net.background import Background
from ..net.trace import tracing
from ..timeouts import SAMPLE_INTERVAL
from .events import CALL, ERROR, RETURN, STATE, Event, LaneState, Recording

_now = time.monotonic_ns  # bound once: it is called for every event

#: Seconds with no new event, and no lane in a _MOVING state, before the sampler backs off.
IDLE_AFTER = 1.0
#: The longest wait between two samples once backed off, in seconds.
IDLE_INTERVAL = 0.1
#: Each backed-off wait is this many times the one before.
BACK_OFF = 2
#: States the kernel leaves by itself, on a timer or a peer's segment, with no call of ours.
_MOVING = frozenset(
    {
        TcpState.SYN_SENT,
        TcpState.SYN_RECEIVED,
        TcpState.FIN_WAIT_1,
        TcpState.CLOSING,
        TcpState.LAST_ACK,
    }
)


class _Lane:
    """One socket on the timeline and how to ask the kernel about it."""

    __slots__ = (
        "name",
        "number",
        "role",
        "actor",
        "sock",
        "local",
        "remote",
        "state",
        "queue",
        "gone",
        "accepted",
        "recorded",
        "done",
        "peer_added",
        "peer",
        "request",
    )

    def __init__(
        self, name: str, number: int, role: str, sock: socket.socket | None, local=None, remote=None
    ) -> None:
        self.name, self.number, self.role, self.sock = name, number, role, sock
        self.actor = "client" if role == "client" else "server"
        self.local, self.remote = local, remote
        self.state: TcpState | None = None
        self.queue: AcceptQueue | None = None
        self.gone = False
        self.accepted = role != "server"
        self.recorded: tuple | None = None  # the fields of its last state event
        self.done = False
        self.peer_added = False
        self.peer: _Lane | None = None  # for the server's side: the client's lane
        self.request = None  # its prepared lookup by addresses (ConnectionLookup.prepare)


class Recorder:
    """A context manager that records calls and kernel states; see the module docstring."""

    def __init__(self, *, interval: float = SAMPLE_INTERVAL, follow_helpers: bool = True) -> None:
        """follow_helpers=False: do not subscribe to the helpers' trace hook; the owner (the
        stepper) reports its own calls, so a learner's own Recorder can run at the same time."""
        if not isinstance(interval, (int, float)) or interval <= 0:
            raise ValueError(f"interval must be a positive number of seconds, got {interval!r}")
        self.interval = float(interval)
        self.follow_helpers = follow_helpers
        # Plain tuples, appended without a lock (list.append is atomic): recording a call
        # must cost next to nothing next to the call itself.
        self._events: list[tuple] = []
        self._lanes: list[_Lane] = []
        self._live_lanes: list[_Lane] = []
        self._lane_of_socket: dict[int, _Lane] = {}
        self._server_lanes: dict[tuple, _Lane] = {}
        self._counts: dict[str, int] = {}
        self._lock = threading.RLock()  # guards the lane lists
        self._sample_lock = threading.Lock()  # one sampling pass at a time
        self._background: Background | None = None
        self._lookup: ConnectionLookup | None = None
        self._start_ns = self._end_ns = 0
        self._finished = False
        self._stopped = False
        self._tracing: contextlib.AbstractContextManager | None = None
        # The sampler's pace (see _pace): set by the sampler thread, read by the callers.
        self._wake = threading.Event()
        self._dozing = False  # backed off or asleep: a recorded call must wake the sampler
        self._wait: float | None = self.interval
        self._seen = 0  # _activity() at the last pass
        self._changed_ns = 0  # when the last pass found a new event

    # -- lifetime -------------------------------------------------------------------
    def __enter__(self) -> Recorder:
        if self._finished or self._background is not None:
            raise RuntimeError("this Recorder has already recorded: make a new Recorder()")
        self._lookup = ConnectionLookup()
        self._start_ns = self._changed_ns = time.monotonic_ns()
        self._background = Background("recorder")
        # The thread gets a weak reference, and starts before this Recorder is the tracer of
        # the context it copies: a Recorder nobody holds is collected, and its finalizer
        # stops the thread.
        self._finalizer = weakref.finalize(
            self, _abandoned, self._background, self._wake, self._lookup
        )
        self._finalizer.atexit = False  # at exit the daemon thread simply ends
        self._background.start(
            _sample_while_held,
            weakref.ref(self),
            self._background.stopping,
            self._wake,
            name="recorder",
        )
        if self.follow_helpers:
            # Nested recorders: the inner one hears the calls until it stops.
            self._tracing = tracing(self)
            self._tracing.__enter__()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def stop(self) -> Recording:
        """Stop sampling (idempotent) and return the recording.

        An error in the sampler thread, or a sampler that does not stop, is a RuntimeError.
        """
        if not self._finished and self._background is not None:
            self._finished = True
            try:
                self._background.stop()
                self._wake.set()  # after stop(): the sampler wakes to find it stopping
                self._background.close()  # joins the sampler; raises what went wrong in it
                self.sample()
            finally:
                self._end_ns = time.monotonic_ns()
                self._stopped = True  # sample() is a no-op from now on
                self._finalizer.detach()
                self._lookup.close()
                if self._tracing is not None:
                    with contextlib.suppress(ValueError):  # stopped from another context
                        self._tracing.__exit__(None, None, None)
        return self.recording

    @property
    def recording(self) -> Recording:
        """What has been recorded so far (the whole of it once stopped)."""
        end_ns = self._end_ns or time.monotonic_ns()
        events = [Event(*fields) for fields in list(self._events)]
        return Recording.from_events(events, self._start_ns, end_ns)

    @property
    def sampler_wait(self) -> float | None:
        """Seconds the sampler waits before its next sample: `interval` on its beat, up to
        IDLE_INTERVAL backed off, None while it sleeps until a socket is registered."""
        return self._wait

    def _pace(self) -> float | None:
        """Sample, then choose how long to wait before the next sample (see the module
        docstring). The sampler thread's one step."""
        self.sample()
        now, seen = _now(), self._activity()
        if seen != self._seen or any(lane.state in _MOVING for lane in self._live_lanes):
            self._seen, self._changed_ns, wait = seen, now, self.interval
        elif not self._live_lanes:
            wait = None
        elif now - self._changed_ns < IDLE_AFTER * 1e9:
            wait = self.interval
        else:
            longest = max(self.interval, IDLE_INTERVAL)
            wait = min((self._wait or self.interval) * BACK_OFF, longest)
        self._dozing = wait is None or wait > self.interval
        # A call or a lane recorded since `seen` was counted found _dozing still False and
        # woke nobody: it is found here (the caller appends, then reads _dozing; this thread
        # sets _dozing, then counts again).
        if self._dozing and self._activity() != seen:
            self._dozing, wait = False, self.interval
        self._wait = wait
        return wait

    def _activity(self) -> int:
        """Events and lanes so far: a change means something happened since the last pass."""
        return len(self._events) + len(self._lanes)

    def _woken(self) -> None:
        """A call or a lane was recorded: a sampler that backed off or sleeps comes back."""
        if self._dozing:
            self._dozing = False
            self._wake.set()

    # -- what the helpers report ----------------------------------------------------
    def call(self, actor: str, lane: str, name: str) -> None:
        self._events.append((_now(), CALL, lane, name, actor, ""))
        if self._dozing:
            self._woken()

    def returned(self, actor: str, lane: str, name: str, detail: str = "") -> None:
        self._events.append((_now(), RETURN, lane, name, actor, detail))
        if self._dozing:
            self._woken()

    def failed(self, actor: str, lane: str, name: str, error: BaseException) -> None:
        self._events.append((_now(), ERROR, lane, name, actor, f"{type(error).__name__}: {error}"))
        if self._dozing:
            self._woken()

    def begin(self, sock: socket.socket, role: str, remote, name: str) -> _Lane:
        """A call on `sock` starts (the helpers' fast path: track() and call() in one)."""
        lane = self._lane_of_socket.get(id(sock)) or self._new_lane(role, sock, remote=remote)
        self._events.append((_now(), CALL, lane.name, name, lane.actor, ""))
        if self._dozing:
            self._woken()
        return lane

    def _new_lane(self, role: str, sock, local=None, remote=None, number=None) -> _Lane:
        """Lanes are named by role and number: 'client', 'client 2', 'server 1', ..."""
        with self._lock:
            if number is None:
                number = self._counts[role] = self._counts.get(role, 0) + 1
            name = role if number == 1 and role != "server" else f"{role} {number}"
            lane = _Lane(name, number, role, sock, local, remote)
            self._lanes.append(lane)
            self._live_lanes.append(lane)
            if role == "server":
                self._server_lanes[(local, remote)] = lane
            if sock is not None:
                self._lane_of_socket[id(sock)] = lane
        if self._dozing:  # the first lane wakes a sampler that had nothing to watch
            self._woken()
        return lane

    def track(self, sock: socket.socket, role: str, remote=None) -> str:
        """The lane of `sock`, registered on first sight; role is 'listener' or 'client'.

        A client's `remote` is where it connects to: the server's side of the connection
        gets a lane of its own once the client's port is known (see client_port_known).
        """
        lane = self._lane_of_socket.get(id(sock))
        if lane is None:
            lane = self._new_lane(role, sock, remote=remote)
        return lane.name

    def client_port_known(self, sock: socket.socket, local) -> None:
        """The client's connect() has started and has this local address."""
        lane = self._lane_of_socket.get(id(sock))
        if lane is not None and not lane.peer_added and lane.remote is not None:
            self._add_server_side(lane, local[:2])

    def track_accepted(self, sock: socket.socket, local, remote) -> str:
        """Register a socket accept() returned: it continues the lane of the server's side."""
        local, remote = tuple(local[:2]), tuple(remote[:2])
        with self._lock:
            lane = self._server_lanes.get((local, remote))
            if lane is None:
                lane = self._new_lane("server", sock, local, remote)
            lane.sock, lane.accepted = sock, True
            self._lane_of_socket[id(sock)] = lane
        return lane.name

    def _add_server_side(self, lane: _Lane, local) -> bool:
        """The kernel builds the server's side of a connection before any accept(): track it.

        Both the caller's thread (right after connect() starts) and the sampler thread (for
        a client still blocked in connect()) may get here first: the lock makes it once.
        True for the call that added it."""
        with self._lock:
            if lane.peer_added:
                return False
            lane.local, lane.peer_added = local, True
            peer = self._new_lane("server", None, lane.remote, local, number=lane.number)
            peer.peer = lane
            return True

    def _resolve_local(self, lane: _Lane) -> None:
        """For a client blocked in connect(): read its port from the kernel."""
        sock = lane.sock
        if lane.remote is None:
            return
        try:
            local = sock.getsockname()[:2]
        except OSError:  # closed by its owner meanwhile
            if sock.fileno() >= 0:
                raise
            return
        if local[1] != 0:
            self._add_server_side(lane, local)

    # -- sampling -------------------------------------------------------------------
    def sample(self) -> None:
        """Ask the kernel for the state of every lane still alive; record the changes."""
        with self._sample_lock:
            if not self._stopped and self._lookup is not None:  # between enter and stop
                self._sample_unlocked()

    def _sample_unlocked(self) -> None:
        with self._lock:
            lanes = list(self._live_lanes)
        lookup = self._lookup
        by_address = []
        retired = False
        for lane in lanes:
            if lane.sock is not None:
                read = self._read_held(lane)
                if read is not None:
                    state, queue = read
                    if state is not TcpState.CLOSED or lane.local is None or not lane.remote:
                        retired |= self._observe(lane, state, queue)
                        continue
                    # The socket reads CLOSE once the kernel has handed the connection to a
                    # TIME-WAIT entry of its own (tcp_time_wait, after shutdown() and the
                    # peer's FIN): the lane follows the connection, found by its addresses.
                elif lane.role == "listener":
                    retired |= self._observe(lane, TcpState.CLOSED)
                    continue
            if lane.local is not None:
                if lane.request is None:
                    lane.request = lookup.prepare(lane.local, lane.remote)
                by_address.append(lane)
            elif lane.sock is None:
                # Closed before its port was known (a refused connect()): nothing to ask.
                retired |= self._observe(lane, None)
        if by_address:
            states = confirmed_states(
                lookup, [lane.request for lane in by_address], [lane.state for lane in by_address]
            )
            for lane, state in zip(by_address, states, strict=True):
                retired |= self._observe(lane, state)
        if retired:
            with self._lock:
                self._live_lanes = [lane for lane in self._live_lanes if not lane.done]

    def _read_held(self, lane: _Lane) -> tuple[TcpState, AcceptQueue | None] | None:
        """The state of the socket a lane holds, or None once it is closed: from then on the
        lane is found by its addresses, and lets the socket go (a long recording would
        otherwise keep every socket it saw alive), and its id with it, which a new socket
        may get. Its owner may close it while this thread reads it."""
        sock = lane.sock
        if sock.fileno() >= 0:
            if not lane.peer_added and lane.role == "client":
                self._resolve_local(lane)
            try:
                return self._lookup.held(sock)
            except (ValueError, OSError):
                if sock.fileno() >= 0:
                    raise
        self._lane_of_socket.pop(id(sock), None)
        lane.sock = None
        return None

    def _observe(
        self, lane: _Lane, state: TcpState | None, queue: AcceptQueue | None = None
    ) -> bool:
        """Record a lane's state if it changed; True when the lane can no longer change."""
        if state is None:
            if lane.state is None:
                # Not in the kernel yet (a dropped SYN leaves no server side), or it came and
                # went between two samples: stop asking once no socket can bring it back.
                lane.done = self._closed(lane) and (lane.peer is None or self._closed(lane.peer))
                return lane.done
            state, lane.gone = TcpState.CLOSED, True
        fields = (state, lane.accepted, queue, lane.gone)
        if fields != lane.recorded:
            lane.recorded, lane.state, lane.queue = fields, state, queue
            self._events.append((_now(), STATE, lane.name, state.linux_name, "kernel", "", *fields))
        # TIME_WAIT only ends by the kernel's timer; CLOSED is final once no socket of ours
        # can reopen it (a fresh, unconnected socket is CLOSED too, until listen or connect).
        if state is TcpState.TIME_WAIT or (state is TcpState.CLOSED and self._closed(lane)):
            lane.done = True
        return lane.done

    @staticmethod
    def _closed(lane: _Lane) -> bool:
        return lane.sock is None or lane.sock.fileno() < 0

    # -- a snapshot for the stepper ------------------------------------------------
    def lane_states(self) -> list[LaneState]:
        """Every lane's last seen state, after sampling once now, with the segment counters of
        each socket still held open (read here, on demand, not by the 1 ms sampler)."""
        self.sample()
        with self._lock:
            return [
                LaneState(
                    lane.name,
                    lane.state,
                    lane.accepted,
                    lane.queue,
                    lane.gone,
                    _counts_of(lane.sock) if lane.role != "listener" else None,
                )
                for lane in self._lanes
            ]


def _sample_while_held(
    recorder_ref: weakref.ref, stopping: threading.Event, wake: threading.Event
) -> None:
    """The sampler thread: sample and wait, as Recorder._pace says, until stop() or until
    nobody holds the Recorder (it is held here only while it samples)."""
    while True:
        wake.clear()  # before the check: a stop() that comes after it sets wake again
        if stopping.is_set():
            return
        recorder = recorder_ref()
        if recorder is None:
            return
        interval, start_ns, wait = recorder.interval, recorder._start_ns, recorder._pace()
        del recorder
        if wake.wait(wait):
            # Woken by a call or a new socket: back onto the beat at its next tick, on a grid
            # from the start of the recording, as if it had never stopped: not at once (that
            # would catch the call's socket before its system call, a fresh socket's CLOSED),
            # nor a fixed time after each call, always in the same step with the caller.
            stopping.wait(interval - (_now() - start_ns) / 1e9 % interval)


def _abandoned(background: Background, wake: threading.Event, lookup: ConnectionLookup) -> None:
    """A Recorder was collected without stop(): end its sampler (not joined: this may run in
    the sampler thread itself) and close its netlink socket, which only the sampler used."""
    background.stop()
    wake.set()
    lookup.close()


def _counts_of(sock: socket.socket | None) -> SegmentCounts | None:
    """An open socket's segment counters, or None (closed, not held, or not Linux)."""
    if sock is None or sock.fileno() < 0:
        return None
    return read_counts(sock)
