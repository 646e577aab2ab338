"""The socket calls of one scenario run, and what the TCP model says each put on the wire.

`ScenarioSockets` owns one run's sockets (the listener, the clients, the accepted
connections), reports every call it makes to the Recorder it is given, and turns a call
into an `Outcome`: what it returned and a sentence told from the TCP model's transitions
(tcp_model.narrate), never a canned string per step.

Rules: no threads and no waiting here. A call that would block comes back as `Blocked` (the
socket and the selector events it needs); whoever waits calls `complete()` once the socket
is ready, or `abandon()`. Leaving the context manager closes every socket; the Recorder,
the workers and the deadlines belong to the engine.
"""

from __future__ import annotations

import dataclasses
import errno
import selectors
import socket
from collections.abc import Callable

from ..kernel.tcp_info import AcceptQueue, accept_queue
from ..model import tcp_model
from ..model.addresses import Address
from ..model.states import TcpState
from ..net.clients import raise_connect_error
from ..record.recorder import Recorder
from .scenarios import Scenario, Step

#: Every scenario runs on loopback; the listener binds port 0 and reads its port back.
HOST = "127.0.0.1"


@dataclasses.dataclass(frozen=True)
class Outcome:
    """What the learner reads after a step: the call, what it returned, and why."""

    step: str | None
    result: str
    explanation: str
    #: The flags of each segment the TCP model says the step put on the wire, in order.
    sent: tuple[str, ...] = ()
    #: The state the explanation claims for each lane once the kernel has settled.
    claims: tuple[tuple[str, TcpState], ...] = ()


@dataclasses.dataclass(frozen=True)
class Blocked:
    """A call waiting for `sock` to be ready for `events` (selectors.EVENT_READ/WRITE)."""

    step: Step
    sock: socket.socket
    events: int
    finish: Callable[[], str]  # makes the call once the socket is ready; may raise OSError
    transitions: tuple = ()  # what the model says the call put on the wire before blocking
    retry_model: tcp_model.Connection | None = None  # set when the first SYN was dropped

    def outcome(self) -> Outcome:
        """What the learner reads while the call waits."""
        wire = tcp_model.narrate(list(self.transitions)) if self.transitions else ""
        reasons = {
            "connect": "connect() is waiting for the handshake to finish",
            "accept": "accept() is waiting: the accept queue holds no finished connection",
            "recv": "recv() is waiting: nothing has arrived to read",
        }
        return Outcome(
            self.step.label,
            "still blocked",
            " ".join(filter(None, [wire, reasons[self.step.call] + "."])),
            _sent(self.transitions),
        )


class ScenarioSockets:
    """The sockets of one scenario run and the calls on them; see the module docstring."""

    def __init__(self, scenario: Scenario, recorder: Recorder) -> None:
        self.scenario, self.recorder = scenario, recorder
        self.sockets: dict[str, socket.socket] = {}  # by step target: 'server', 'conn', ...
        self.lanes: dict[str, str] = {}  # step target -> the recorder's lane
        self.models: dict[str, tcp_model.Connection] = {}
        self.accepted = 0
        self.listening = False
        listener = self.sockets["server"] = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if scenario.defer_accept is not None:
                listener.setsockopt(
                    socket.IPPROTO_TCP, socket.TCP_DEFER_ACCEPT, scenario.defer_accept
                )
            listener.bind((HOST, 0))  # bound, not listening: a connect() now is refused
            self.address: Address = listener.getsockname()[:2]
            self.lanes["server"] = recorder.track(listener, "listener")
        except BaseException:
            listener.close()
            raise

    def __enter__(self) -> ScenarioSockets:
        return self

    def __exit__(self, *exc_info: object) -> None:
        for sock in self.sockets.values():
            sock.close()

    # -- what the sockets allow -----------------------------------------------------------
    def is_open(self, target: str) -> bool:
        return target in self.sockets and self.sockets[target].fileno() >= 0

    @property
    def listener_open(self) -> bool:
        """True while the scenario's listener listens (after listen(), before its close())."""
        return self.listening and self.is_open("server")

    def accept_queue(self) -> AcceptQueue | None:
        """The listener's accept queue, or None when nothing listens."""
        if self.listener_open:
            return accept_queue(self.sockets["server"])
        return None

    def lane_for(self, step: Step) -> str:
        return self.lanes.get(step.target, step.target)

    # -- performing a call ------------------------------------------------------------------
    def perform(self, step: Step) -> Outcome | Blocked:
        """Make the call `step` names: its Outcome, or Blocked when it has to wait."""
        if step.call == "connect":
            # The lane first, so the call is drawn on the lane its return and states use.
            sock = self.sockets[step.target] = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            self.lanes[step.target] = self.recorder.track(sock, "client", remote=self.address)
        self.recorder.call(step.actor, self.lane_for(step), step.label)
        try:
            made = getattr(self, f"_{step.call}")(step)
        except OSError as error:
            return self._failed(step, error, ())
        if isinstance(made, Blocked):
            return made
        result, transitions = made
        self.recorder.returned(step.actor, self.lane_for(step), step.label, result)
        return self._outcome(step, result, transitions)

    def complete(self, blocked: Blocked) -> Outcome:
        """Make a blocked call now that its socket is ready."""
        step = blocked.step
        try:
            result = blocked.finish()
        except OSError as error:
            return self._failed(step, error, blocked.transitions)
        self.recorder.returned(step.actor, self.lane_for(step), step.label, result)
        transitions = list(blocked.transitions)
        if blocked.retry_model is not None:
            # The first SYN was dropped; the kernel's retry timer sent it again.
            transitions += _model_apply(lambda: blocked.retry_model.timeout("client"))
        return self._outcome(step, result, transitions)

    def abandon(self, blocked: Blocked, why: str) -> Outcome:
        """Give a blocked call up (cancelled, or out of time) and say so."""
        step = blocked.step
        self.recorder.failed(step.actor, self.lane_for(step), step.label, TimeoutError(why))
        return Outcome(step.label, why, "The call was abandoned.")

    def _failed(self, step: Step, error: OSError, transitions) -> Outcome:
        self.recorder.failed(step.actor, self.lane_for(step), step.label, error)
        return self._outcome(
            step, f"raised {type(error).__name__}: {error.strerror or error}", transitions
        )

    def _outcome(self, step: Step, result: str, transitions) -> Outcome:
        outcome = _outcome(step, result, transitions)
        return dataclasses.replace(outcome, claims=self.claims())

    def claims(self) -> tuple[tuple[str, TcpState], ...]:
        """What the model says each lane of a connection the model follows is in now."""
        claimed = []
        for target, model in self.models.items():
            if model is None or target not in self.lanes:
                continue  # a closed socket's lane still follows its connection
            end = "client" if target.startswith("client") else "server"
            claimed.append((self.lanes[target], model.end(end).state))
        return tuple(claimed)

    # -- the calls ----------------------------------------------------------------------------
    def _listen(self, step: Step):
        self.sockets["server"].listen(self.scenario.backlog)
        self.listening = True
        return f"listening on port {self.address[1]}", tcp_model.Connection().listen()

    def _connect(self, step: Step):
        sock = self.sockets[step.target]
        sock.setblocking(False)
        queue_full = self._queue_full()
        model = tcp_model.Connection(
            drop_next_syn=queue_full, defer_accept=self.scenario.defer_accept is not None
        )
        if self.listener_open:
            model.listen()
        self.models[step.target] = model
        code = sock.connect_ex(self.address)
        self.recorder.client_port_known(sock, sock.getsockname())
        transitions = _model_apply(model.connect)
        if code not in (0, errno.EINPROGRESS):  # the normal answer of a non-blocking connect
            raise OSError(code, errno.errorcode.get(code, str(code)))

        def finish() -> str:
            raise_connect_error(sock)
            sock.setblocking(True)
            return f"connected from port {sock.getsockname()[1]}"

        return Blocked(
            step,
            sock,
            selectors.EVENT_WRITE,
            finish,
            tuple(transitions),
            model if queue_full else None,
        )

    def _queue_full(self) -> bool:
        queue = self.accept_queue()
        return queue is not None and queue.length > queue.maximum

    def _accept(self, step: Step):
        listener = self.sockets["server"]

        def finish() -> str:
            listener.setblocking(False)
            conn, peer = listener.accept()
            conn.setblocking(True)
            self.accepted += 1
            key = "conn" if self.accepted == 1 else f"conn{self.accepted}"
            self.sockets[key] = conn
            self.lanes[key] = self.recorder.track_accepted(conn, self.address, peer)
            client = next(
                (
                    k
                    for k, s in self.sockets.items()
                    if k.startswith("client")
                    and s.fileno() >= 0
                    and s.getsockname()[:2] == peer[:2]
                ),
                None,
            )
            if client is not None and self.models.get(client) is not None:
                self.models[key] = self.models[client]
                self.models[key].accept()
            return f"a new socket ({self.lanes[key]}) connected to port {peer[1]}"

        return Blocked(step, listener, selectors.EVENT_READ, finish)

    def _send(self, step: Step):
        sent = self.sockets[step.target].send(step.data)
        model = self.models.get(step.target)
        transitions = _model_apply(lambda: model.send(step.actor, sent)) if model else []
        return f"{sent} bytes handed to the kernel", transitions

    def _recv(self, step: Step):
        sock = self.sockets[step.target]

        def finish() -> str:
            data = sock.recv(1024)
            model = self.models.get(step.target)
            if model is not None:
                model.read(step.actor)
            return repr(data) + (" (the peer has closed)" if not data else "")

        return Blocked(step, sock, selectors.EVENT_READ, finish)

    def _shutdown(self, step: Step):
        self.sockets[step.target].shutdown(socket.SHUT_WR)
        model = self.models.get(step.target)
        transitions = _model_apply(lambda: model.shutdown(step.actor)) if model else []
        return "this side will send no more", transitions

    def _close(self, step: Step):
        self.sockets[step.target].close()
        if step.target == "server":
            transitions = _model_apply(lambda: _listening_model().close("server"))
            for model in dict.fromkeys(m for m in self.models.values() if m is not None):
                transitions += _model_apply(model.close_listener)
            return "the listener is closed", transitions
        model = self.models.get(step.target)
        transitions = _model_apply(lambda: model.close(step.actor)) if model else []
        return "closed", transitions


def _outcome(step: Step, result: str, transitions) -> Outcome:
    if transitions:
        explanation = tcp_model.narrate(list(transitions))
    elif step.call in ("accept", "recv"):
        # Not TCP events (see tcp_model): they only take what the kernel already holds.
        explanation = (
            f"Nothing goes on the wire: {step.call}() only takes what the "
            "kernel already finished and holds for this socket."
        )
    else:
        explanation = f"{step.label} {result}."
    return Outcome(step.label, result, explanation, _sent(transitions))


def _sent(transitions) -> tuple[str, ...]:
    return tuple(t.sent.flags for t in transitions if t.sent is not None)


def _model_apply(event: Callable[[], list]) -> list:
    try:
        return event()
    except tcp_model.IllegalTransition:
        return []  # the model has no rule for it; the kernel's states still tell


def _listening_model() -> tcp_model.Connection:
    model = tcp_model.Connection()
    model.listen()
    return model
