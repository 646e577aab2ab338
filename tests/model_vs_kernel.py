"""Run one order of socket calls on a real loopback connection and on the TCP model, side by side.

`Duel` owns a listener, a connected client and the server's side of that connection, and a
`tcp_model.Connection` that is told the same calls. After each call it waits (bounded) until the
kernel's two states equal the model's; with live capture (root or CAP_NET_RAW) it also compares
the segments the call put on the wire with the ones the model sent. A mismatch raises an
AssertionError carrying the whole history, so a failing order reads as a story.

The calls: send, recv (everything there is, without blocking), shutdown(SHUT_WR), close, close
with SO_LINGER 0 (abort), on either end; accept(); and closing the listener.
"""

from __future__ import annotations

import errno
import random
import socket
from dataclasses import dataclass

from handshake_lab.kernel.lookup import ConnectionLookup
from handshake_lab.model.states import TcpState
from handshake_lab.model.tcp_model import Connection, IllegalTransition
from handshake_lab.model.tcp_rules import TcpEvent
from handshake_lab.net.clients import set_linger_zero
from handshake_lab.timeouts import LOOPBACK_TIMEOUT, poll_until

#: Linux's delayed-ACK timer is at most TCP_DELACK_MAX (200 ms); settling never takes longer.
SETTLE_TIMEOUT = 1.0
PAYLOAD = b"abc"
ENDS = ("client", "server")


@dataclass(frozen=True)
class Call:
    what: str  # send, recv, shutdown, close, abort, accept, close_listener
    end: str = "server"

    def __str__(self) -> str:
        return (
            f"{self.end}.{self.what}()"
            if self.what not in ("accept", "close_listener")
            else ("listener.accept()" if self.what == "accept" else "listener.close()")
        )


ALL_CALLS = (
    *(Call(what, end) for end in ENDS for what in ("send", "recv", "shutdown", "close", "abort")),
    Call("accept"),
    Call("close_listener"),
)


class Plan:
    """The calls' bookkeeping without sockets: which ends are open and what the model says.

    `Duel` performs a Plan's calls on real sockets; `every_order` and `random_order` walk
    Plans alone, so the orders are chosen before any socket is opened.
    """

    def __init__(self, *, accepted: bool) -> None:
        self.model = Connection()
        self.model.listen()
        self.model.connect()
        self.open_ends = {"client"}
        self.listener_open = True
        if accepted:
            self.note(Call("accept"))

    def possible(self) -> list[Call]:
        return [call for call in ALL_CALLS if self._possible(call)]

    def _possible(self, call: Call) -> bool:
        if call.what == "accept":
            return self.listener_open and not self.model.accepted
        if call.what == "close_listener":
            return self.listener_open
        if call.end not in self.open_ends:
            return False
        if call.what in ("shutdown", "abort"):
            event = TcpEvent.SHUTDOWN if call.what == "shutdown" else TcpEvent.ABORT
            return self.legal(call.end, event)
        return True

    def legal(self, end: str, event: TcpEvent) -> bool:
        try:
            self.model.end(end).rule_for(event, self.model.overlays[end])
        except IllegalTransition:
            return False
        return True

    def note(self, call: Call, *, sent: bool = True) -> None:
        """Tell the model about a call made (`sent`: whether a send() went through)."""
        model, end = self.model, call.end
        if call.what == "send" and sent:
            model.send(end, len(PAYLOAD))
        elif call.what == "recv":
            model.read(end)
        elif call.what == "shutdown":
            model.shutdown(end)
        elif call.what in ("close", "abort"):
            (model.close if call.what == "close" else model.abort)(end)
            self.open_ends.discard(end)
        elif call.what == "accept":
            model.accept()
            self.open_ends.add("server")
        elif call.what == "close_listener":
            model.close_listener()
            self.listener_open = False


def _capture(port: int):
    """A live sniffer for the port, or None where this process may not capture."""
    from handshake_lab.capture.sniffer import LoopbackSniffer

    sniffer = LoopbackSniffer(port)
    try:
        sniffer.__enter__()
    except OSError:
        return None
    return sniffer


class Duel:
    """One real connection and its model; see the module docstring."""

    def __init__(self, *, accepted: bool, capture: bool = True) -> None:
        self.history: list[str] = []
        self.listener = socket.socket()
        self.sockets: dict[str, socket.socket] = {}
        self.lookup = ConnectionLookup()
        self.sniffer = None
        try:
            self.listener.bind(("127.0.0.1", 0))
            self.listener.listen(8)
            self.address = self.listener.getsockname()
            self.sniffer = _capture(self.address[1]) if capture else None
            self.plan = Plan(accepted=False)
            self.model = self.plan.model
            client = self.sockets["client"] = socket.create_connection(
                self.address, timeout=LOOPBACK_TIMEOUT
            )
            client.setblocking(True)  # every call below says MSG_DONTWAIT itself
            self.client_address = client.getsockname()
            self.requests = {
                "client": self.lookup.prepare(self.client_address, self.address),
                "server": self.lookup.prepare(self.address, self.client_address),
            }
            self._settle("connect()", 0, len(self.model.wire))
            if accepted:
                self.perform(Call("accept"))
        except BaseException:
            self.close()
            raise

    def run(self, calls) -> None:
        for call in calls:
            if call not in self.plan.possible():
                raise ValueError(f"{call} is not possible after {self.history}")
            self.perform(call)

    # -- performing one call on both --------------------------------------------------------
    def perform(self, call: Call) -> None:
        wire_before, captured_before = len(self.model.wire), self._captured_count()
        outcome = getattr(self, f"_{call.what}")(call)
        self.history.append(f"{call}: {outcome}")
        self._settle(str(call), captured_before, len(self.model.wire) - wire_before)

    def _send(self, call: Call) -> str:
        expected_to_fail = not self.plan.legal(call.end, TcpEvent.SEND)
        try:
            self.sockets[call.end].send(PAYLOAD, socket.MSG_DONTWAIT | socket.MSG_NOSIGNAL)
        except OSError as error:
            if not expected_to_fail:
                self._fail(f"{call} raised {error!r}, but the model allows a send here")
            self.plan.note(call, sent=False)
            return f"raised {errno.errorcode.get(error.errno, error.errno)}, as the model says"
        if expected_to_fail:
            self._fail(f"{call} succeeded, but the model says this end cannot send")
        self.plan.note(call)
        return "sent"

    def _recv(self, call: Call) -> str:
        received = b""
        try:
            while chunk := self.sockets[call.end].recv(4096, socket.MSG_DONTWAIT):
                received += chunk
        except (BlockingIOError, ConnectionResetError):
            pass
        self.plan.note(call)
        return f"got {received!r}"

    def _shutdown(self, call: Call) -> str:
        self.sockets[call.end].shutdown(socket.SHUT_WR)
        self.plan.note(call)
        return "done"

    def _close(self, call: Call) -> str:
        self.sockets[call.end].close()
        self.plan.note(call)
        return "done"

    def _abort(self, call: Call) -> str:
        set_linger_zero(self.sockets[call.end])
        self.sockets[call.end].close()
        self.plan.note(call)
        return "done"

    def _accept(self, call: Call) -> str:
        self.listener.settimeout(LOOPBACK_TIMEOUT)
        self.sockets["server"], _ = self.listener.accept()
        self.sockets["server"].setblocking(True)
        self.plan.note(call)
        return "done"

    def _close_listener(self, call: Call) -> str:
        self.listener.close()
        self.plan.note(call)
        return "done"

    # -- comparing ----------------------------------------------------------------------------
    def kernel_states(self) -> tuple[TcpState, TcpState]:
        found = self.lookup.states([self.requests["client"], self.requests["server"]])
        client, server = (rows[0] if rows else TcpState.CLOSED for rows in found)
        return client, server

    def model_states(self) -> tuple[TcpState, TcpState]:
        return self.model.client.state, self.model.server.state

    def _settle(self, what: str, captured_before: int, sent: int) -> None:
        expected = self.model_states()
        seen = [self.kernel_states()]

        def settled() -> bool:
            seen[0] = self.kernel_states()
            captured = self._captured_count() - captured_before
            return seen[0] == expected and (self.sniffer is None or captured >= sent)

        if not poll_until(settled, timeout=SETTLE_TIMEOUT):
            self._fail(
                f"after {what} the kernel shows client {seen[0][0].linux_name}, server "
                f"{seen[0][1].linux_name}; the model says client {expected[0].linux_name}, "
                f"server {expected[1].linux_name}"
            )
        if self.sniffer is not None:
            on_wire = [s.flags for s in self.sniffer.segments[captured_before:]]
            modelled = [s.flags for s in self.model.wire[len(self.model.wire) - sent :]]
            if on_wire != modelled:
                self._fail(f"after {what} the wire carried {on_wire}; the model sent {modelled}")

    def _captured_count(self) -> int:
        return len(self.sniffer.segments) if self.sniffer is not None else 0

    def _fail(self, message: str) -> None:
        story = "\n  ".join(self.history)
        raise AssertionError(f"{message}\n  calls so far:\n  {story}")

    def close(self) -> None:
        for sock in (*self.sockets.values(), self.listener):
            sock.close()
        self.lookup.close()
        if self.sniffer is not None:
            self.sniffer.__exit__(None, None, None)

    def __enter__(self) -> Duel:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def every_order(depth: int, *, accepted: bool) -> list[tuple[Call, ...]]:
    """Every order of exactly `depth` calls (or fewer, where nothing more is possible)."""
    orders = []

    def extend(prefix: tuple[Call, ...]) -> None:
        plan = Plan(accepted=accepted)
        for call in prefix:
            plan.note(call, sent=plan.legal(call.end, TcpEvent.SEND))
        possible = plan.possible() if len(prefix) < depth else []
        if not possible:
            orders.append(prefix)
        for call in possible:
            extend((*prefix, call))

    extend(())
    return orders


def random_order(seed: int, length: int) -> tuple[bool, list[Call]]:
    """A seeded random order: (whether it starts accepted, up to `length` calls)."""
    chooser = random.Random(seed)
    accepted = chooser.random() < 0.7
    plan, calls = Plan(accepted=accepted), []
    for _ in range(length):
        possible = plan.possible()
        if not possible:
            break
        call = chooser.choice(possible)
        plan.note(call, sent=plan.legal(call.end, TcpEvent.SEND))
        calls.append(call)
    return accepted, calls
