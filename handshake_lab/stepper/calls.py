"""The socket calls of one scenario run, and what the TCP model says each put on the wire.

`ScenarioSockets` owns one run's sockets (the listener, the clients, the accepted
connections), reports every call it makes to the Recorder it is given, and turns a call
into an `Outcome`: what it returned and one line per kernel action (`Action`: whose socket,
the TCP model's phrase for what its kernel did, its state change), never a canned string per
step. A call that did nothing the scenario goes on from (a refused connect(), an abandoned
call) is marked `again`: the engine offers it again.

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

from ..kernel.defer_accept import set_defer_accept
from ..kernel.tcp_info import AcceptQueue, accept_queue, has_tcp_info
from ..model import tcp_model
from ..model.addresses import Address
from ..model.states import TcpState
from ..net.clients import raise_connect_error
from ..record.recorder import Recorder
from .scenarios import Scenario, Step

#: Every scenario runs on loopback; the listener binds port 0 and reads its port back.
HOST = "127.0.0.1"


@dataclasses.dataclass(frozen=True)
class Action:
    """One thing one kernel did in a step: whose socket, what it did, its state change."""

    #: The lane of the socket that acted ('client', 'server 1', 'listener'), or 'server'
    #: for the server's kernel where it holds no socket for the connection.
    who: str
    transition: tcp_model.Transition

    @property
    def did(self) -> str:
        return self.transition.description

    @property
    def change(self) -> str:
        """'CLOSED → SYN-SENT', or '' when the state stayed the same."""
        before, after = self.transition.from_state, self.transition.to_state
        return "" if before is after else f"{before.rfc_name} → {after.rfc_name}"

    @property
    def line(self) -> str:
        """'client: sends a SYN ... (CLOSED → SYN-SENT).'"""
        return f"{self.who}: {self.did}" + (f" ({self.change})" if self.change else "") + "."


@dataclasses.dataclass(frozen=True)
class Outcome:
    """What the learner reads after a step: the call, what it returned, and why."""

    step: str | None
    result: str
    #: One line per kernel action (Action.line), then the `note`.
    explanation: str
    #: The flags of each segment the TCP model says the step put on the wire, in order.
    sent: tuple[str, ...] = ()
    #: The state the explanation claims for each lane once the kernel has settled.
    claims: tuple[tuple[str, TcpState], ...] = ()
    #: What the kernels did, one Action each, in order.
    actions: tuple[Action, ...] = ()
    #: What the call itself did or waits for, beyond the kernels' actions ('' when nothing).
    note: str = ""
    #: True when the call did nothing the scenario goes on from (refused, abandoned): the
    #: step is offered again.
    again: bool = False


def told(
    step: str | None, result: str, actions=(), note: str = "", *, again: bool = False
) -> Outcome:
    """An Outcome whose explanation is one line per action, then the note."""
    actions = tuple(actions)
    lines = [action.line for action in actions] + ([note] if note else [])
    return Outcome(step, result, "\n".join(lines), _sent(actions), (), actions, note, again)


#: What a blocked call waits for.
_WAITING = {
    "connect": "connect() waits: the handshake has not finished",
    "accept": "accept() waits: the accept queue holds no finished connection",
    "recv": "recv() waits: nothing has arrived to read",
}


@dataclasses.dataclass(frozen=True)
class Blocked:
    """A call waiting for `sock` to be ready for `events` (selectors.EVENT_READ/WRITE)."""

    step: Step
    sock: socket.socket
    events: int
    finish: Callable[[], str]  # makes the call once the socket is ready; may raise OSError
    actions: tuple[Action, ...] = ()  # what the kernels did before the call blocked
    retry_model: tcp_model.Connection | None = None  # set when the first SYN was dropped

    def outcome(self) -> Outcome:
        """What the learner reads while the call waits (what will end the wait, as things
        stand, is ScenarioSockets.until: the snapshot's `waiting`)."""
        return told(self.step.label, "still blocked", self.actions, _WAITING[self.step.call] + ".")


class ScenarioSockets:
    """The sockets of one scenario run and the calls on them; see the module docstring."""

    def __init__(self, scenario: Scenario, recorder: Recorder) -> None:
        self.scenario, self.recorder = scenario, recorder
        self.sockets: dict[str, socket.socket] = {}  # by step target: 'server', 'conn', ...
        self.lanes: dict[str, str] = {}  # step target -> the recorder's lane
        self.models: dict[str, tcp_model.Connection | None] = {}
        #: A client target -> the lane of the server's side of its connection.
        self.server_sides: dict[str, str] = {}
        self.accepted = 0
        self.listening = False
        listener = self.sockets["server"] = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if scenario.defer_accept is not None:
                set_defer_accept(listener, scenario.defer_accept)
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
        """The listener's accept queue; None when nothing listens or the platform has no
        TCP_INFO to read it from."""
        if self.listener_open and has_tcp_info():
            return accept_queue(self.sockets["server"])
        return None

    def lane_for(self, step: Step) -> str:
        return self.lanes.get(step.target, step.target)

    # -- performing a call ------------------------------------------------------------------
    def perform(self, step: Step) -> Outcome | Blocked:
        """Make the call `step` names: its Outcome, or Blocked when it has to wait."""
        if step.call == "connect":
            # A new socket (a failed connect's was closed), and its lane first, so the call
            # is drawn on the lane its return and states use.
            sock = self.sockets[step.target] = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            self.lanes[step.target] = self.recorder.track(sock, "client", remote=self.address)
        self.recorder.call(step.actor, self.lane_for(step), step.label)
        try:
            made = getattr(self, f"_{step.call}")(step)
        except OSError as error:
            return self._failed(step, error, ())
        if isinstance(made, Blocked):
            return made
        result, actions = made
        self.recorder.returned(step.actor, self.lane_for(step), step.label, result)
        return self._outcome(step, result, actions)

    def complete(self, blocked: Blocked) -> Outcome:
        """Make a blocked call now that its socket is ready."""
        step = blocked.step
        try:
            result = blocked.finish()
        except OSError as error:
            return self._failed(step, error, blocked.actions)
        self.recorder.returned(step.actor, self.lane_for(step), step.label, result)
        actions = list(blocked.actions)
        if blocked.retry_model is not None:
            # The first SYN was dropped; the kernel's retry timer sent it again.
            model = blocked.retry_model
            actions += self._apply(model, lambda: model.timeout("client"))
        return self._outcome(step, result, actions)

    def abandon(self, blocked: Blocked, why: str) -> Outcome:
        """Give a blocked call up (cancelled, or out of time) and say so; it is offered again."""
        step = blocked.step
        self.recorder.failed(step.actor, self.lane_for(step), step.label, TimeoutError(why))
        note = "The call was abandoned; it is offered again."
        if step.call == "connect":
            self._drop_client(step.target)
            note = "The call was abandoned and its socket closed; connect() is offered again."
        return told(step.label, why, (), note, again=True)

    def _failed(self, step: Step, error: OSError, actions) -> Outcome:
        self.recorder.failed(step.actor, self.lane_for(step), step.label, error)
        result = f"raised {type(error).__name__}: {error.strerror or error}"
        if step.call != "connect":
            return self._outcome(step, result, actions)
        # A socket whose connect() failed is of no more use: close it, as
        # socket.create_connection() does, and offer connect() again on a new socket.
        self.sockets[step.target].close()
        note = (
            f"The stepper closed that socket (no send() or recv() on it); {step.label} is "
            "offered again and makes a new one."
        )
        outcome = told(step.label, result, actions, note, again=True)
        return dataclasses.replace(outcome, claims=self.claims())

    def _drop_client(self, target: str) -> None:
        """Close a client whose connect() never finished; the model no longer follows it."""
        self.sockets[target].close()
        self.models[target] = None

    def _outcome(self, step: Step, result: str, actions) -> Outcome:
        outcome = _outcome(step, result, actions)
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

    # -- who did what -----------------------------------------------------------------------
    def _apply(self, model: tcp_model.Connection | None, event: Callable[[], list]) -> list:
        """Apply a model event; each transition as an Action naming the socket that acted."""
        if model is None:
            return []
        try:
            transitions = event()
        except tcp_model.IllegalTransition:
            return []  # the model has no rule for it; the kernel's states still tell
        return [Action(self._who(model, t), t) for t in transitions]

    def _who(self, model: tcp_model.Connection, transition: tcp_model.Transition) -> str:
        states = {transition.from_state, transition.to_state}
        if transition.end == "server" and states <= {TcpState.LISTEN, TcpState.CLOSED}:
            # The listener itself, or the server's kernel holding no socket for this one.
            return "listener" if TcpState.LISTEN in states else "server"
        client = next(
            (t for t, m in self.models.items() if m is model and t.startswith("client")), None
        )
        if client is None:
            return transition.end
        if transition.end == "client":
            return self.lanes[client]
        return self.server_sides.get(client, "server")

    def until(self, blocked: Blocked) -> str:
        """What will end a blocked call's wait, as things stand now (checked by tests)."""
        if blocked.step.call == "connect":
            return (
                "Its kernel sends the SYN again on a timer; once a server.accept() makes room "
                "in the accept queue, the next retry completes the handshake."
            )
        if blocked.step.call == "recv":
            return "It returns when the other end sends data or closes."
        if self.scenario.defer_accept is None:
            return "A client's connect() puts a finished connection there, and accept() returns."
        if any(model is not None for t, model in self.models.items() if t.startswith("client")):
            return (
                "TCP_DEFER_ACCEPT holds the connection back until data arrives: a client.send() "
                "(or the deferral running out) completes it, and accept() returns."
            )
        return (
            "TCP_DEFER_ACCEPT waits for data: a client's connect() and then its send() "
            "complete a connection, and accept() returns."
        )

    # -- the calls ----------------------------------------------------------------------------
    def _listen(self, step: Step):
        self.sockets["server"].listen(self.scenario.backlog)
        self.listening = True
        model = tcp_model.Connection()
        return f"listening on port {self.address[1]}", self._apply(model, model.listen)

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
        lanes_before = {view.lane for view in self.recorder.lane_states()}
        code = sock.connect_ex(self.address)
        self.recorder.client_port_known(sock, sock.getsockname())
        # The recorder gives the server's side of the connection a lane of its own.
        self.server_sides[step.target] = next(
            (
                view.lane
                for view in self.recorder.lane_states()
                if view.lane not in lanes_before and view.lane != self.lanes[step.target]
            ),
            "server",
        )
        actions = self._apply(model, model.connect)
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
            tuple(actions),
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
        return f"{sent} bytes handed to the kernel", self._apply(
            model, lambda: model.send(step.actor, sent)
        )

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
        actions = self._apply(model, lambda: model.shutdown(step.actor))
        return "this side will send no more", actions

    def _close(self, step: Step):
        self.sockets[step.target].close()
        if step.target == "server":
            listening = _listening_model()
            actions = self._apply(listening, lambda: listening.close("server"))
            for model in dict.fromkeys(m for m in self.models.values() if m is not None):
                actions += self._apply(model, model.close_listener)
            return "the listener is closed", actions
        model = self.models.get(step.target)
        return "closed", self._apply(model, lambda: model.close(step.actor))


def _outcome(step: Step, result: str, actions) -> Outcome:
    if actions:
        return told(step.label, result, actions)
    if step.call in ("accept", "recv"):
        # Not TCP events (see tcp_model): they only take what the kernel already holds.
        note = (
            f"Nothing goes on the wire: {step.call}() only takes what the "
            "kernel already finished and holds for this socket."
        )
    else:
        note = f"{step.label} {result}."
    return told(step.label, result, (), note)


def _sent(actions) -> tuple[str, ...]:
    return tuple(a.transition.sent.flags for a in actions if a.transition.sent is not None)


def _listening_model() -> tcp_model.Connection:
    model = tcp_model.Connection()
    model.listen()
    return model
