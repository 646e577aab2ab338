"""The stepper: one real socket call per step, on loopback, with the kernel's view after each.

Client and server live in this one process. Each step performs exactly one socket call
(listen, connect, accept, send, recv or close) and returns a Snapshot: every lab socket
with its kernel state, the listener's accept queue, what the call returned, and a sentence
or two on what the kernels did on the wire, told from the TCP model's transitions
(tcp_model.narrate), never from a canned string per step.

Rules: a call that may block (connect to a full queue, accept with nothing queued, recv
with nothing to read) runs in a worker thread, so a notebook never freezes; it can be
cancelled, and every wait is bounded. The stepper is a context manager; close() (and
reset()) cancel what is pending, close every socket and join every thread. No UI here:
stepper_widget.py draws it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import selectors
import socket
import threading
from collections.abc import Callable

from ..kernel.tcp_info import AcceptQueue, accept_queue
from ..model import tcp_model
from ..model.states import TcpState
from ..record.events import LaneState, Recording
from ..record.recorder import Recorder
from ..timeouts import THREAD_JOIN_TIMEOUT

#: How long a blocked step may wait before it gives up (a dropped SYN is retried by the
#: kernel for about two minutes; a learner may take a while to click accept()).
STEP_BLOCK_TIMEOUT = 180.0
#: How long a step waits in the caller's thread before it hands the wait to a worker.
STEP_GRACE = 0.02
#: How long a snapshot waits for the capture thread to read a step's first packet.
PACKET_GRACE = 0.005

HOST = "127.0.0.1"
GREETING = b"hello"


@dataclasses.dataclass(frozen=True)
class Step:
    """One socket call: `label` is what the learner reads, e.g. ``client.connect()``."""

    label: str
    call: str  # listen, connect, accept, send, recv, close
    target: str  # the socket it acts on: 'server', 'client', 'client2', 'conn', 'conn2'
    data: bytes = b""

    @property
    def actor(self) -> str:
        return "client" if self.target.startswith("client") else "server"


@dataclasses.dataclass(frozen=True)
class Scenario:
    """A named sequence of steps and the listener's settings."""

    key: str
    title: str
    summary: str
    steps: tuple[Step, ...]
    backlog: int = 128
    defer_accept: int | None = None


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
    packets: tuple = ()

    def state_of(self, lane: str) -> TcpState | None:
        """The kernel state of one lane ('listener', 'client', 'server 1', ...)."""
        return next((view.state for view in self.sockets if view.lane == lane), None)

    def as_text(self) -> str:
        lines = [f"after {self.step or 'nothing yet'}: {self.result}"]
        for view in self.sockets:
            state = view.state.linux_name if view.state else "-"
            note = view.note if view.accepted or view.gone else "in the kernel, not accepted yet"
            lines.append(f"  {view.lane:<10} {state:<12} {note}".rstrip())
        return "\n".join(lines + [self.explanation])


def _steps(*specs: tuple) -> tuple[Step, ...]:
    return tuple(Step(*spec) for spec in specs)


_OPEN = (("server.listen()", "listen", "server"), ("client.connect()", "connect", "client"),
         ("server.accept()", "accept", "server"))
_HELLO = GREETING.decode()

SCENARIOS: dict[str, Scenario] = {scenario.key: scenario for scenario in (
    Scenario(
        "basic", "The handshake and an echo",
        "listen, connect, accept, one echo, then both sides close.",
        _steps(*_OPEN,
               (f"client.send(b'{_HELLO}')", "send", "client", GREETING),
               ("conn.recv()", "recv", "conn"),
               (f"conn.send(b'{_HELLO}')", "send", "conn", GREETING),
               ("client.recv()", "recv", "client"),
               ("client.close()", "close", "client"),
               ("conn.close()", "close", "conn"),
               ("server.close()", "close", "server")),
    ),
    Scenario(
        "full-queue", "A full accept queue",
        "listen(0) holds one finished connection; the next client's SYN is dropped and it "
        "waits in SYN-SENT until the server accepts.",
        _steps(("server.listen(0)", "listen", "server"),
               ("client.connect()", "connect", "client"),
               ("client2.connect()", "connect", "client2"),
               ("server.accept()", "accept", "server"),
               ("server.accept() again", "accept", "server"),
               ("client.close()", "close", "client"),
               ("client2.close()", "close", "client2"),
               ("conn.close()", "close", "conn"),
               ("conn2.close()", "close", "conn2"),
               ("server.close()", "close", "server")),
        backlog=0,
    ),
    Scenario(
        "defer-accept", "TCP_DEFER_ACCEPT",
        "the kernel keeps the server's side in SYN-RECEIVED, and accept() waits, until the "
        "client sends data.",
        _steps(*_OPEN,
               (f"client.send(b'{_HELLO}')", "send", "client", GREETING),
               ("conn.recv()", "recv", "conn"),
               ("client.close()", "close", "client"),
               ("conn.close()", "close", "conn"),
               ("server.close()", "close", "server")),
        defer_accept=5,
    ),
    Scenario(
        "client-closes-first", "The client closes first",
        "the client ends in FIN-WAIT-2 then TIME-WAIT; the server in CLOSE-WAIT then LAST-ACK.",
        _steps(*_OPEN,
               ("client.close()", "close", "client"),
               ("conn.recv()", "recv", "conn"),
               ("conn.close()", "close", "conn"),
               ("server.close()", "close", "server")),
    ),
    Scenario(
        "server-closes-first", "The server closes first",
        "now the server's side waits in TIME-WAIT and the client in CLOSE-WAIT.",
        _steps(*_OPEN,
               ("conn.close()", "close", "conn"),
               ("client.recv()", "recv", "client"),
               ("client.close()", "close", "client"),
               ("server.close()", "close", "server")),
    ),
)}


class _Pending:
    """A call waiting in a worker thread for its socket to become ready."""

    def __init__(self, step: Step, sock: socket.socket, events: int,
                 finish: Callable[[], str], transitions: list | None = None,
                 retry_model: tcp_model.Connection | None = None) -> None:
        self.step, self.sock, self.events, self.finish = step, sock, events, finish
        self.transitions = transitions or []  # what the model says the call put on the wire
        self.retry_model = retry_model  # set when the first SYN was dropped
        self.waker = socket.socketpair()
        self.done = threading.Event()
        self.thread: threading.Thread | None = None

    def cancel(self) -> None:
        with contextlib.suppress(OSError):  # already closed: nothing left to wake
            self.waker[1].send(b"x")

    def close(self) -> None:
        for end in self.waker:
            end.close()


class Stepper:
    """Perform a scenario one real socket call at a time; see the module docstring.

    `in_order=True` offers only the scenario's next step; `in_order=False` offers every
    step the sockets allow now, so accept() can be called before connect() (and blocks).
    `on_change` is called (from a worker thread) when a blocked call finishes.
    """

    def __init__(self, scenario: str = "basic", *, in_order: bool = True,
                 on_change: Callable[[Snapshot], None] | None = None,
                 capture_packets: bool = True) -> None:
        if scenario not in SCENARIOS:
            raise ValueError(f"unknown scenario {scenario!r}; choose one of "
                             f"{', '.join(SCENARIOS)}")
        self.scenario = SCENARIOS[scenario]
        self.in_order = in_order
        self.on_change = on_change
        self.capture_packets = capture_packets
        self.packets_note = ""
        self._lock = threading.RLock()
        self._recorder: Recorder | None = None
        self._sniffer = None
        self._closed = False
        self._generation = 0
        self._start()

    # -- lifetime -----------------------------------------------------------------------
    def _start(self) -> None:
        self._generation += 1
        self._sockets: dict[str, socket.socket] = {}
        self._lanes: dict[str, str] = {}
        self._models: dict[str, tcp_model.Connection] = {}
        self._pending: dict[str, _Pending] = {}
        self._taken: list[str] = []
        self._accepted = 0
        self._last = (None, "nothing done yet", f"Scenario: {self.scenario.summary}")
        self._recorder = Recorder(follow_helpers=False).__enter__()
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if self.scenario.defer_accept is not None:
            listener.setsockopt(socket.IPPROTO_TCP, socket.TCP_DEFER_ACCEPT,
                                self.scenario.defer_accept)
        listener.bind((HOST, 0))  # bound, not listening: a connect() now is refused
        self._sockets["server"] = listener
        self.address = listener.getsockname()[:2]
        self._lanes["server"] = self._recorder.track(listener, "listener")
        self._sniffer, self._packets_from, self._expected_packets = self._start_capture(), 0, 0

    def _start_capture(self):
        """Capture the lab's packets where this process may (root or CAP_NET_RAW)."""
        if not self.capture_packets:
            self.packets_note = "Packet capture is off for this stepper (capture_packets=False)."
            return None
        from ..capture.tiers import LoopbackSniffer

        sniffer = LoopbackSniffer(self.address[1])
        try:
            return sniffer.__enter__()
        except OSError:  # PermissionError without CAP_NET_RAW; no packet sockets off Linux
            self.packets_note = ("Packets are not shown here: live capture needs root or "
                                 "CAP_NET_RAW. Notebook 05 shows real packets another way.")
            return None

    def close(self) -> None:
        """Cancel pending calls, close every socket, join every thread (idempotent)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self._stop()

    def _stop(self) -> None:
        for pending in list(self._pending.values()):
            pending.cancel()
        stuck = []
        for pending in list(self._pending.values()):
            if pending.thread is not None:
                pending.thread.join(THREAD_JOIN_TIMEOUT)
                if pending.thread.is_alive():
                    stuck.append(pending.step.label)
            pending.close()
        for sock in self._sockets.values():
            sock.close()
        if self._sniffer is not None:
            self._sniffer.__exit__(None, None, None)
        if self._recorder is not None:
            self._recorder.stop()
        if stuck:
            raise RuntimeError(f"blocked calls did not stop: {stuck}")

    def reset(self, scenario: str | None = None) -> Snapshot:
        """Start again (optionally with another scenario) with fresh sockets."""
        if scenario is not None and scenario not in SCENARIOS:
            raise ValueError(f"unknown scenario {scenario!r}; choose one of {', '.join(SCENARIOS)}")
        self._require_open()
        self._stop()  # without the lock: blocked workers take it on their way out
        with self._lock:
            if scenario is not None:
                self.scenario = SCENARIOS[scenario]
            self._start()
        return self.snapshot()

    def __enter__(self) -> Stepper:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _require_open(self) -> None:
        if self._closed:
            raise RuntimeError("this stepper is closed: make a new Stepper()")

    # -- what can be done next ------------------------------------------------------------
    @property
    def recording(self) -> Recording:
        return self._recorder.recording

    @property
    def steps(self) -> tuple[Step, ...]:
        return self.scenario.steps

    def available(self) -> list[Step]:
        """The steps the learner may take now."""
        with self._lock:
            remaining = [s for s in self.scenario.steps if s.label not in self._taken]
            if self.in_order:
                remaining = remaining[:1]
            return [step for step in remaining if self._possible(step)]

    def _possible(self, step: Step) -> bool:
        if step.target in self._pending or (step.call == "accept" and "server" in self._pending):
            return False
        if step.call in ("listen", "connect"):
            return True
        if step.call == "accept":
            return self._is_listening()
        return step.target in self._sockets and self._sockets[step.target].fileno() >= 0

    def _is_listening(self) -> bool:
        return any(s.call == "listen" for s in self.scenario.steps if s.label in self._taken)

    # -- taking a step ----------------------------------------------------------------------
    def step(self, label: str | None = None) -> Snapshot:
        """Perform the step called `label` (the next available one when None)."""
        with self._lock:
            self._require_open()
            available = self.available()
            if label is None:
                if not available:
                    raise RuntimeError(self._why_nothing_available())
                step = available[0]
            else:
                step = next((s for s in available if s.label == label), None)
                if step is None:
                    raise ValueError(f"{label!r} cannot be taken now; available: "
                                     f"{[s.label for s in available] or 'none'}")
            self._taken.append(step.label)
            if self._sniffer is not None:
                self._packets_from = len(self._sniffer.segments)
            self._perform(step)
        return self.snapshot()

    def _why_nothing_available(self) -> str:
        if self._pending:
            return (f"waiting for {', '.join(p.step.label for p in self._pending.values())}: "
                    "wait() for it, or cancel()")
        return "the scenario is finished: reset() to start again"

    def _perform(self, step: Step) -> None:
        recorder, lane = self._recorder, self._lane_for(step)
        recorder.call(step.actor, lane, step.label)
        try:
            action = getattr(self, f"_do_{step.call}")
            outcome = action(step)
        except OSError as error:
            recorder.failed(step.actor, self._lane_for(step), step.label, error)
            self._finish(step, f"raised {type(error).__name__}: {error.strerror or error}", [])
            return
        if isinstance(outcome, _Pending):
            self._wait_or_hand_over(outcome)
        else:
            result, transitions = outcome
            recorder.returned(step.actor, self._lane_for(step), step.label, result)
            self._finish(step, result, transitions)

    def _lane_for(self, step: Step) -> str:
        return self._lanes.get(step.target, step.target)

    def _finish(self, step: Step, result: str, transitions: list) -> None:
        self._expected_packets = sum(t.sent is not None for t in transitions)
        if transitions:
            explanation = tcp_model.narrate(transitions)
        elif step.call in ("accept", "recv"):
            # Not TCP events (see tcp_model): they only take what the kernel already holds.
            explanation = (f"Nothing goes on the wire: {step.call}() only takes what the "
                           "kernel already finished and holds for this socket.")
        else:
            explanation = f"{step.label} {result}."
        self._last = (step.label, result, explanation)

    # -- the calls ----------------------------------------------------------------------------
    def _do_listen(self, step: Step):
        self._sockets["server"].listen(self.scenario.backlog)
        model = tcp_model.Connection()
        return f"listening on port {self.address[1]}", model.listen()

    def _do_connect(self, step: Step):
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sockets[step.target] = sock
        self._lanes[step.target] = self._recorder.track(sock, "client", remote=self.address)
        sock.setblocking(False)
        queue_full = self._queue_full()
        model = tcp_model.Connection(drop_next_syn=queue_full,
                                     defer_accept=self.scenario.defer_accept is not None)
        if self._is_listening():
            model.listen()
        self._models[step.target] = model
        code = sock.connect_ex(self.address)
        self._recorder.client_port_known(sock, sock.getsockname())
        transitions = self._model_apply(model.connect) if self._is_listening() else []
        if code not in (0, errno.EINPROGRESS):  # the normal answer of a non-blocking connect
            raise OSError(code, errno.errorcode.get(code, str(code)))

        def finish() -> str:
            error = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if error:
                raise OSError(error, errno.errorcode.get(error, str(error)))
            sock.setblocking(True)
            return f"connected from port {sock.getsockname()[1]}"

        return _Pending(step, sock, selectors.EVENT_WRITE, finish, transitions,
                        model if queue_full else None)

    def _queue_full(self) -> bool:
        if not self._is_listening():
            return False
        queue = accept_queue(self._sockets["server"])
        return queue.length > queue.maximum

    def _do_accept(self, step: Step):
        listener = self._sockets["server"]

        def finish() -> str:
            listener.setblocking(False)
            conn, peer = listener.accept()
            conn.setblocking(True)
            self._accepted += 1
            key = "conn" if self._accepted == 1 else f"conn{self._accepted}"
            self._sockets[key] = conn
            self._lanes[key] = self._recorder.track_accepted(conn, self.address, peer)
            client = next((k for k, s in self._sockets.items() if k.startswith("client")
                           and s.fileno() >= 0 and s.getsockname()[:2] == peer[:2]), None)
            if client is not None:
                self._models[key] = self._models.get(client)
            return f"a new socket ({self._lanes[key]}) connected to port {peer[1]}"

        return _Pending(step, listener, selectors.EVENT_READ, finish)

    def _do_send(self, step: Step):
        sock = self._sockets[step.target]
        sent = sock.send(step.data)
        end = "client" if step.actor == "client" else "server"
        model = self._models.get(step.target)
        transitions = self._model_apply(lambda: model.send(end, sent)) if model else []
        return f"{sent} bytes handed to the kernel", transitions

    def _do_recv(self, step: Step):
        sock = self._sockets[step.target]

        def finish() -> str:
            data = sock.recv(1024)
            return repr(data) + (" (the peer has closed)" if not data else "")

        return _Pending(step, sock, selectors.EVENT_READ, finish)

    def _do_close(self, step: Step):
        sock = self._sockets[step.target]
        sock.close()
        if step.target == "server":
            return "the listener is closed", self._model_apply(
                lambda: _listening_model().close("server"))
        end = "client" if step.actor == "client" else "server"
        model = self._models.get(step.target)
        transitions = self._model_apply(lambda: model.close(end)) if model else []
        return "closed", transitions

    @staticmethod
    def _model_apply(event: Callable[[], list]) -> list:
        try:
            return event()
        except tcp_model.IllegalTransition:
            return []  # the model has no rule for it; the kernel's states still tell

    # -- blocking calls ---------------------------------------------------------------------
    def _wait_or_hand_over(self, pending: _Pending) -> None:
        with selectors.DefaultSelector() as selector:
            selector.register(pending.sock, pending.events)
            ready = selector.select(STEP_GRACE)
        if ready:
            self._complete(pending)
            pending.close()
            return
        self._pending[pending.step.target] = pending
        pending.thread = threading.Thread(target=self._worker, args=(pending,),
                                          name=f"handshake-lab-step-{pending.step.target}",
                                          daemon=True)
        pending.thread.start()
        self._last = (pending.step.label, "still blocked", self._blocked_sentence(pending))

    def _complete(self, pending: _Pending) -> None:
        step = pending.step
        try:
            result = pending.finish()
        except OSError as error:
            self._recorder.failed(step.actor, self._lane_for(step), step.label, error)
            self._finish(step, f"raised {type(error).__name__}: {error.strerror or error}",
                         pending.transitions)
            return
        self._recorder.returned(step.actor, self._lane_for(step), step.label, result)
        transitions = pending.transitions
        if pending.retry_model is not None:
            # The first SYN was dropped; the kernel's retry timer sent it again.
            transitions = transitions + self._model_apply(
                lambda: pending.retry_model.timeout("client"))
        self._finish(step, result, transitions)

    def _worker(self, pending: _Pending) -> None:
        generation = self._generation
        with selectors.DefaultSelector() as selector:
            selector.register(pending.sock, pending.events)
            selector.register(pending.waker[0], selectors.EVENT_READ)
            ready = [key.fileobj for key, _ in selector.select(STEP_BLOCK_TIMEOUT)]
        with self._lock:
            if generation != self._generation:
                pending.done.set()
                return  # reset() replaced everything this call belonged to
            self._pending.pop(pending.step.target, None)
            if self._closed or pending.waker[0] in ready or not ready:
                why = "cancelled" if ready else f"gave up after {STEP_BLOCK_TIMEOUT:g} s"
                self._recorder.failed(pending.step.actor, self._lane_for(pending.step),
                                      pending.step.label, TimeoutError(why))
                self._last = (pending.step.label, why, "The call was abandoned.")
            else:
                self._complete(pending)
            pending.done.set()
        if self.on_change is not None and not self._closed:
            self.on_change(self.snapshot())

    def _blocked_sentence(self, pending: _Pending) -> str:
        wire = tcp_model.narrate(pending.transitions) if pending.transitions else ""
        reasons = {
            "connect": "connect() is waiting for the handshake to finish",
            "accept": "accept() is waiting: the accept queue holds no finished connection",
            "recv": "recv() is waiting: nothing has arrived to read",
        }
        return " ".join(filter(None, [wire, reasons[pending.step.call] + "."]))

    def wait(self, timeout: float = STEP_BLOCK_TIMEOUT) -> Snapshot:
        """Wait (bounded) until no call is blocked, then return the snapshot."""
        for pending in list(self._pending.values()):
            if not pending.done.wait(timeout):
                raise TimeoutError(f"{pending.step.label} is still blocked after {timeout} s")
            if pending.thread is not None:
                pending.thread.join(THREAD_JOIN_TIMEOUT)
            pending.close()
        return self.snapshot()

    def cancel(self) -> Snapshot:
        """Abandon every blocked call."""
        for pending in list(self._pending.values()):
            pending.cancel()
        return self.wait(THREAD_JOIN_TIMEOUT)

    # -- what the kernel says -----------------------------------------------------------
    def snapshot(self) -> Snapshot:
        """The kernel's view of every lab socket now, and what the last step did."""
        with self._lock:
            views = tuple(self._recorder.lane_states())
            listener = self._sockets["server"]
            queue = None
            if listener.fileno() >= 0 and self._is_listening():
                queue = accept_queue(listener)
            label, result, explanation = self._last
            return Snapshot(
                scenario=self.scenario.key, step=label, result=result, explanation=explanation,
                sockets=views, accept_queue=queue,
                pending=tuple(p.step.label for p in self._pending.values()),
                next_steps=tuple(step.label for step in self.available()),
                finished=len(self._taken) == len(self.scenario.steps) and not self._pending,
                packets=self._step_packets(),
            )

    def _step_packets(self) -> tuple:
        """What the sniffer saw since the step began. Loopback delivers within the call, but
        the sniffer thread may still be reading: wait (bounded) for as many segments as the
        TCP model says the step sent."""
        if self._sniffer is None:
            return ()
        expected = self._packets_from + self._expected_packets  # what the model says was sent
        self._sniffer.wait_for(lambda segments: len(segments) >= expected, PACKET_GRACE)
        return tuple(self._sniffer.segments[self._packets_from:])


def _listening_model() -> tcp_model.Connection:
    model = tcp_model.Connection()
    model.listen()
    return model
