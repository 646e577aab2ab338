"""A load test: N short connections to an echo server, and how many it answered per second.

`measure_connections_per_second` drives N short connections (connect, send, recv, close) from
a few client threads, run through one `Background`, and returns a `LoadTestResult`.
`echo_round_trip` is one such connection; `time_wait_rows` reads what a test left behind.

Rules: loopback only; every blocking call has a timeout, and the whole test a time budget.
The clients close with SO_LINGER 0, which sends RST: the side that closes first keeps its end
in TIME_WAIT for a while (a constant compiled into Linux), and thousands of short connections
would otherwise leave thousands of TIME_WAIT entries behind, long after the test. A client's
failure is reported in the result, never lost; the client calls are not traced (a load test
inside a Recorder would bury the timeline).
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass

from ..model.addresses import Address, family_of, loopback_address
from ..timeouts import LOOPBACK_TIMEOUT, THREAD_JOIN_TIMEOUT
from .background import Background
from .clients import set_linger_zero

__all__ = [
    "LoadTestResult",
    "echo_round_trip",
    "measure_connections_per_second",
    "time_wait_rows",
]

#: How many client threads a load test may use (2 cores here: more only adds switching).
MAX_CONCURRENCY = 64
#: How many connections one load test may make (each uses an ephemeral port for a moment).
MAX_CONNECTIONS = 20_000


def echo_round_trip(
    address: Address, message: bytes = b"ping", *, timeout: float = LOOPBACK_TIMEOUT
) -> bytes:
    """Connect, send ``message``, read until as many bytes came back (or the server closed),
    close with RST (SO_LINGER 0, no TIME_WAIT); return what came back."""
    host, port = loopback_address(address)
    sock = socket.socket(family_of(host), socket.SOCK_STREAM)
    try:
        sock.settimeout(timeout)
        sock.connect((host, port))
        sock.sendall(message)
        reply = b""
        while len(reply) < len(message):
            chunk = sock.recv(len(message) - len(reply))
            if not chunk:
                break
            reply += chunk
        return reply
    finally:
        with contextlib.suppress(OSError):
            set_linger_zero(sock)
        sock.close()


def time_wait_rows(port: int) -> frozenset[tuple[Address, Address]]:
    """The (local, remote) ends of every TIME_WAIT entry on ``port`` in the kernel's table now.

    A port number is reused: entries left by an earlier program whose server had the same
    number can still be there, so compare with a snapshot taken when the server started.
    """
    from ..kernel.lookup import tcp_sockets
    from ..model.states import TcpState

    return frozenset(
        (row.local, row.remote) for row in tcp_sockets(port) if row.state is TcpState.TIME_WAIT
    )


@dataclass(frozen=True)
class LoadTestResult:
    """What a load test measured: how many connections were answered, in how long.

    ``time_wait_before``: the TIME_WAIT entries already on the port when the server started
    (left by an earlier user of the same port number), so ``time_wait_left()`` is only ours.
    """

    server: str
    port: int
    connections: int
    concurrency: int
    answered: int
    seconds: float
    errors: tuple[str, ...] = ()
    time_wait_before: frozenset = frozenset()

    def time_wait_left(self) -> frozenset[tuple[Address, Address]]:
        """The TIME_WAIT entries on the port now that were not there when the server started."""
        return time_wait_rows(self.port) - self.time_wait_before

    @property
    def rate(self) -> float:
        """Connections answered per second."""
        return self.answered / self.seconds if self.seconds > 0 else 0.0

    def __str__(self) -> str:
        text = (
            f"{self.server}: {self.answered} of {self.connections} connections answered "
            f"in {self.seconds:.2f} s by {self.concurrency} client threads: "
            f"{self.rate:,.0f} connections/s"
        )
        if self.errors:
            text += f"\n  first problem: {self.errors[0]}"
        return text


def _check_count(name: str, value: object, maximum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= maximum:
        raise ValueError(f"{name} must be a whole number from 1 to {maximum}, got {value!r}")
    return value


def measure_connections_per_second(
    server_factory: Callable[[], AbstractContextManager],
    connections: int = 2000,
    concurrency: int = 4,
    *,
    message: bytes = b"ping",
    timeout: float = LOOPBACK_TIMEOUT,
    max_seconds: float = 30.0,
) -> LoadTestResult:
    """Start a server, make ``connections`` short connections to it, return the measured rate.

    ``server_factory()`` returns a context manager whose value has ``.address`` (e.g. the class
    SelectorEchoServer). ``concurrency`` client threads share the connections; each connection
    connects, sends ``message``, waits for the echo and closes with RST. A client thread stops at
    its first failure (kept in ``errors``) and every thread stops after ``max_seconds``.
    """
    connections = _check_count("connections", connections, MAX_CONNECTIONS)
    concurrency = _check_count("concurrency", concurrency, min(MAX_CONCURRENCY, connections))
    if not isinstance(message, bytes) or not message:
        raise ValueError("message must be non-empty bytes, e.g. b'ping'")
    name = getattr(server_factory, "__name__", type(server_factory).__name__)
    lock = threading.Lock()
    answered = [0]
    errors: list[str] = []
    start = threading.Barrier(concurrency + 1, timeout=THREAD_JOIN_TIMEOUT)
    shares = [
        connections // concurrency + (i < connections % concurrency) for i in range(concurrency)
    ]

    with server_factory() as server:
        address = server.address
        time_wait_before = time_wait_rows(address[1])
        name = type(server).__name__ if name == "<lambda>" else name
        deadline = time.monotonic() + max_seconds

        def client(count: int) -> None:
            done = 0
            try:
                start.wait()
                for _ in range(count):
                    if time.monotonic() > deadline:
                        raise TimeoutError(f"stopped after {max_seconds} s")
                    reply = echo_round_trip(address, message, timeout=timeout)
                    if reply != message:
                        raise ValueError(f"sent {message!r}, got back {reply!r}")
                    done += 1
            except BaseException as error:  # reported in the result, never lost
                with lock:
                    errors.append(f"{type(error).__name__}: {error}")
            finally:
                with lock:
                    answered[0] += done

        # Each client gives up within max_seconds plus one timeout for its last connection.
        with Background(
            "load-test clients", join_timeout=max_seconds + 3 * timeout + THREAD_JOIN_TIMEOUT
        ) as clients:
            for index, share in enumerate(shares):
                clients.start(client, share, name=f"load-{index}")
            try:
                start.wait()
            except threading.BrokenBarrierError:
                errors.append("the client threads did not start")
            began = time.perf_counter()
            clients.close()  # joins them all; names any still running
            seconds = time.perf_counter() - began
        port = address[1]
    return LoadTestResult(
        name, port, connections, concurrency, answered[0], seconds, tuple(errors), time_wait_before
    )
