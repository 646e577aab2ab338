"""The stepper's scenarios: named sequences of socket calls and the listener's settings.

Pure data: no sockets, no threads. A Step names one socket call and the socket it acts on;
`calls` performs it, `engine` decides when it may be taken. A scenario that shows a Linux
feature says which (`linux_only`); `scenarios_here` lists those that run on this platform.
"""

from __future__ import annotations

import dataclasses

from .. import platforms

#: What the scenarios send: short enough to read in a timeline label.
GREETING = b"hello"


@dataclasses.dataclass(frozen=True)
class Step:
    """One socket call: `label` is what the learner reads, e.g. ``client.connect()``."""

    label: str
    call: str  # listen, connect, accept, send, recv, shutdown, close
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
    linux_only: str = ""  # what Linux-only thing it shows, e.g. "TCP_DEFER_ACCEPT"


def scenario_named(key: str) -> Scenario:
    """The scenario called `key`; a ValueError naming the choices otherwise."""
    if not isinstance(key, str) or key not in SCENARIOS:
        raise ValueError(f"unknown scenario {key!r}; choose one of {', '.join(SCENARIOS)}")
    return SCENARIOS[key]


def scenarios_here() -> dict[str, Scenario]:
    """The scenarios that run on this platform: all of them on Linux."""
    if platforms.is_linux():
        return dict(SCENARIOS)
    return {key: scenario for key, scenario in SCENARIOS.items() if not scenario.linux_only}


def scenario_to_run(key: str) -> Scenario:
    """The scenario called `key`, if it runs here; a ValueError saying why not otherwise."""
    scenario = scenario_named(key)
    if key not in scenarios_here():
        raise ValueError(
            f"the {key!r} scenario shows {scenario.linux_only}, which {platforms.name()} does "
            f"not have; choose one of {', '.join(scenarios_here())}, or run it on Linux or Binder"
        )
    return scenario


def _steps(*specs: tuple) -> tuple[Step, ...]:
    return tuple(Step(*spec) for spec in specs)


_OPEN = (
    ("server.listen()", "listen", "server"),
    ("client.connect()", "connect", "client"),
    ("server.accept()", "accept", "server"),
)
_HELLO = GREETING.decode()

SCENARIOS: dict[str, Scenario] = {
    scenario.key: scenario
    for scenario in (
        Scenario(
            "basic",
            "The handshake and an echo",
            "listen, connect, accept, one echo, then both sides close.",
            _steps(
                *_OPEN,
                (f"client.send(b'{_HELLO}')", "send", "client", GREETING),
                ("conn.recv()", "recv", "conn"),
                (f"conn.send(b'{_HELLO}')", "send", "conn", GREETING),
                ("client.recv()", "recv", "client"),
                ("client.close()", "close", "client"),
                ("conn.close()", "close", "conn"),
                ("server.close()", "close", "server"),
            ),
        ),
        Scenario(
            "full-queue",
            "A full accept queue",
            "listen(0) holds one finished connection; the next client's SYN is dropped and it "
            "waits in SYN-SENT until the server accepts.",
            _steps(
                ("server.listen(0)", "listen", "server"),
                ("client.connect()", "connect", "client"),
                ("client2.connect()", "connect", "client2"),
                ("server.accept()", "accept", "server"),
                ("server.accept() again", "accept", "server"),
                ("client.close()", "close", "client"),
                ("client2.close()", "close", "client2"),
                ("conn.close()", "close", "conn"),
                ("conn2.close()", "close", "conn2"),
                ("server.close()", "close", "server"),
            ),
            backlog=0,
            linux_only="Linux's accept-queue rule (listen(0) admits one, then drops SYNs)",
        ),
        Scenario(
            "defer-accept",
            "TCP_DEFER_ACCEPT",
            "the kernel keeps the server's side in SYN-RECEIVED, and accept() waits, until the "
            "client sends data.",
            _steps(
                *_OPEN,
                (f"client.send(b'{_HELLO}')", "send", "client", GREETING),
                ("conn.recv()", "recv", "conn"),
                ("client.close()", "close", "client"),
                ("conn.close()", "close", "conn"),
                ("server.close()", "close", "server"),
            ),
            defer_accept=5,
            linux_only="TCP_DEFER_ACCEPT",
        ),
        Scenario(
            "client-closes-first",
            "The client closes first",
            "the client passes through FIN-WAIT-1 (until the server's delayed ACK) to FIN-WAIT-2 "
            "and then TIME-WAIT; the server goes through CLOSE-WAIT and LAST-ACK.",
            _steps(
                *_OPEN,
                ("client.close()", "close", "client"),
                ("conn.recv()", "recv", "conn"),
                ("conn.close()", "close", "conn"),
                ("server.close()", "close", "server"),
            ),
        ),
        Scenario(
            "server-closes-first",
            "The server closes first",
            "now the server's side waits in TIME-WAIT and the client in CLOSE-WAIT.",
            _steps(
                *_OPEN,
                ("conn.close()", "close", "conn"),
                ("client.recv()", "recv", "client"),
                ("client.close()", "close", "client"),
                ("server.close()", "close", "server"),
            ),
        ),
        Scenario(
            "half-close",
            "shutdown(SHUT_WR): the half-close",
            "the client sends its FIN with shutdown() but keeps receiving, so the server can "
            "still answer after reading b''.",
            _steps(
                *_OPEN,
                ("client.shutdown(SHUT_WR)", "shutdown", "client"),
                ("conn.recv()", "recv", "conn"),
                (f"conn.send(b'{_HELLO}')", "send", "conn", GREETING),
                ("client.recv()", "recv", "client"),
                ("conn.close()", "close", "conn"),
                ("client.close()", "close", "client"),
                ("server.close()", "close", "server"),
            ),
        ),
        Scenario(
            "unread-data",
            "close() with unread data",
            "the server closes without reading what the client sent, so its kernel sends RST "
            "instead of a FIN and the client's next recv() fails.",
            _steps(
                *_OPEN,
                (f"client.send(b'{_HELLO}')", "send", "client", GREETING),
                ("conn.close()", "close", "conn"),
                ("client.recv()", "recv", "client"),
                ("client.close()", "close", "client"),
                ("server.close()", "close", "server"),
            ),
        ),
        Scenario(
            "listener-closes",
            "The listener closes before accept()",
            "the finished connection waiting in the accept queue is reset with the listener.",
            _steps(
                ("server.listen()", "listen", "server"),
                ("client.connect()", "connect", "client"),
                ("server.close()", "close", "server"),
                ("client.recv()", "recv", "client"),
                ("client.close()", "close", "client"),
            ),
        ),
    )
}
