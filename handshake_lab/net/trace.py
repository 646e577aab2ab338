"""The trace hook: how the socket helpers report their calls without knowing who listens.

A tracer (the Recorder is one) is made current with ``with tracing(tracer):``; each call the
helpers in `net` make is reported to the current tracer, if any, through `traced`. The hook
is a context variable, not a module global: nested tracers restore the outer one on exit, a
tracer never left does not lock out the next, and the lab's threads start in a copy of
their creator's context (`background`), so a server started inside ``with Recorder():``
reports its accept() calls too. This module imports nothing of the package but the
`Address` alias (model): the socket helpers depend on it, never on the recorder.
"""

from __future__ import annotations

import contextlib
import contextvars
import socket
from collections.abc import Iterator
from typing import Protocol

from ..model.addresses import Address


class Lane(Protocol):
    """What a tracer hands back for a socket: the timeline lane and who acts on it."""

    name: str
    actor: str


class Tracer(Protocol):
    """What the helpers report; the Recorder implements it."""

    def begin(self, sock: socket.socket, role: str, remote: Address | None, name: str) -> Lane: ...
    def returned(self, actor: str, lane: str, name: str, detail: str = "") -> None: ...
    def failed(self, actor: str, lane: str, name: str, error: BaseException) -> None: ...
    def client_port_known(self, sock: socket.socket, local: Address) -> None: ...
    def track_accepted(self, sock: socket.socket, local: Address, remote: Address) -> str: ...


_current: contextvars.ContextVar[Tracer | None] = contextvars.ContextVar(
    "handshake_lab_tracer", default=None
)


def current_tracer() -> Tracer | None:
    """The tracer the helpers report to in this context, if any."""
    return _current.get()


@contextlib.contextmanager
def tracing(tracer: Tracer) -> Iterator[Tracer]:
    """Make `tracer` current for the block (and for the lab threads started inside it)."""
    token = _current.set(tracer)
    try:
        yield tracer
    finally:
        _current.reset(token)


class traced:  # noqa: N801 - used like a function: `with traced(sock, "send()") as call:`
    """Report one call on `sock` to the current tracer, if any: call, then return or error.

    Set ``call.detail`` inside the block to say what the call returned.
    """

    __slots__ = ("tracer", "actor", "lane", "name", "detail")

    def __init__(
        self, sock: socket.socket, name: str, role: str = "client", remote: Address | None = None
    ) -> None:
        self.tracer = tracer = _current.get()
        self.name, self.detail = name, ""
        if tracer is not None:
            lane = tracer.begin(sock, role, remote, name)
            self.lane, self.actor = lane.name, lane.actor

    def __enter__(self) -> traced:
        return self

    def __exit__(self, kind, error, traceback) -> None:
        if self.tracer is None:
            return
        if error is None:
            self.tracer.returned(self.actor, self.lane, self.name, self.detail)
        else:
            self.tracer.failed(self.actor, self.lane, self.name, error)
