"""Two small echo servers for many clients, and a load test that counts connections per second.

``ThreadPerConnectionEchoServer``: one thread accepts; each connection gets a thread of its own
that makes plain blocking calls. ``SelectorEchoServer``: one thread runs a ``selectors`` loop over
non-blocking sockets; what it does when a socket is ready is one function, ``on_ready(key,
selector)`` (``echo_on_ready`` by default; notebook 07's exercise replaces it).
``measure_connections_per_second`` drives N short connections (connect, send, recv, close) from a
few client threads and returns the measured rate.

Rules: loopback only, port 0 (the kernel picks a free port, so re-running never meets "Address
already in use"); every blocking call has a timeout; each server is a context manager whose exit
closes every socket and joins every thread, and re-raises what a server thread raised. The load
test's clients close with SO_LINGER 0, which sends RST: the side that closes first keeps its end
in TIME_WAIT for a while (a constant compiled into Linux), and thousands of short connections
would otherwise leave thousands of TIME_WAIT entries behind, long after the test.
"""

from __future__ import annotations

import contextlib
import selectors
import socket
import struct
import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass

from ..timeouts import LOOPBACK_TIMEOUT, SHORT_TIMEOUT, THREAD_JOIN_TIMEOUT
from .loopback import loopback_address, loopback_host

__all__ = [
    "CONNECTION",
    "LISTENER",
    "LoadTestResult",
    "SelectorEchoServer",
    "ThreadPerConnectionEchoServer",
    "echo_on_ready",
    "echo_round_trip",
    "measure_connections_per_second",
    "time_wait_rows",
]

Address = tuple[str, int]

#: ``key.data`` of the listening socket and of accepted connections in a SelectorEchoServer.
LISTENER = "listener"
CONNECTION = "connection"
_WAKE = "wake"  # the loop's own wake-up socket; never handed to on_ready

#: SO_LINGER on, 0 seconds: close() sends RST and leaves no TIME_WAIT.
_LINGER_ZERO = struct.pack("ii", 1, 0)

#: How many client threads a load test may use (2 cores here: more only adds switching).
MAX_CONCURRENCY = 64
#: How many connections one load test may make (each uses an ephemeral port for a moment).
MAX_CONNECTIONS = 20_000


def _family(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def _close_with_reset(sock: socket.socket) -> None:
    """close() after SO_LINGER 0: the kernel sends RST, the connection leaves no TIME_WAIT."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_ZERO)
    sock.close()


class _EchoServer(AbstractContextManager):
    """What both servers share: the listener, the wake-up pair, thread errors, the address."""

    def __init__(self, host: str = "127.0.0.1", *, backlog: int = 128) -> None:
        self.host = loopback_host(host)
        if isinstance(backlog, bool) or not isinstance(backlog, int) or backlog < 0:
            raise ValueError(f"backlog must be an int >= 0, got {backlog!r}")
        self.backlog = backlog
        self.errors: list[BaseException] = []
        self._listener: socket.socket | None = None
        self._address: Address = ("", 0)
        self._waker: tuple[socket.socket, socket.socket] | None = None
        self._stopping = threading.Event()
        self._started = self._closed = False

    def __enter__(self):
        if self._started:
            raise RuntimeError(f"a {type(self).__name__} runs once: make a new one")
        self._started = True
        listener = socket.socket(_family(self.host), socket.SOCK_STREAM)
        try:
            listener.bind((self.host, 0))
            listener.listen(self.backlog)
            listener.setblocking(False)
            self._address = tuple(listener.getsockname()[:2])
            self._waker = socket.socketpair()
        except BaseException:
            listener.close()
            raise
        self._listener = listener
        try:
            self._start()
        except BaseException:
            self.close(raise_errors=False)
            raise
        return self

    def __exit__(self, kind, error, traceback) -> None:
        self.close(raise_errors=error is None)

    @property
    def address(self) -> Address:
        """The real (host, port) the kernel gave the listening socket."""
        if self._listener is None or self._closed:
            raise RuntimeError(f"the server is not running: use it inside `with "
                               f"{type(self).__name__}() as server:`")
        return self._address

    @property
    def port(self) -> int:
        return self.address[1]

    def _start(self) -> None:  # pragma: no cover - each server starts its threads
        raise NotImplementedError

    def _stop_threads(self) -> list[str]:  # pragma: no cover
        raise NotImplementedError

    def close(self, *, raise_errors: bool = True) -> None:
        """Stop, join every thread, close every socket; raise what a thread raised (idempotent)."""
        if self._closed or not self._started:
            return
        self._closed = True
        self._stopping.set()
        if self._waker is not None:
            with contextlib.suppress(OSError):
                self._waker[1].send(b"x")
        try:
            stuck = self._stop_threads()
        finally:
            if self._listener is not None:
                self._listener.close()
            if self._waker is not None:
                for end in self._waker:
                    end.close()
        if stuck:
            raise RuntimeError(f"threads still running after {THREAD_JOIN_TIMEOUT} s: {stuck}")
        if raise_errors and self.errors:
            raise RuntimeError(f"a {type(self).__name__} thread failed") from self.errors[0]

    def _thread(self, target: Callable, name: str, *args) -> threading.Thread:
        def run() -> None:
            try:
                target(*args)
            except BaseException as error:  # handed back to the caller in close()
                if not self._stopping.is_set():
                    self.errors.append(error)

        thread = threading.Thread(target=run, name=f"handshake-lab-{name}", daemon=True)
        thread.start()
        return thread


# -- one thread per connection ----------------------------------------------------------
class ThreadPerConnectionEchoServer(_EchoServer):
    """An echo server with one accept thread and one thread per connection (blocking calls).

    ``served`` counts the connections whose thread has finished. A connection idle for
    LOOPBACK_TIMEOUT seconds, or reset by its client, ends quietly.
    """

    def __init__(self, host: str = "127.0.0.1", *, backlog: int = 128) -> None:
        super().__init__(host, backlog=backlog)
        self.served = 0
        self._lock = threading.Lock()
        self._connections: set[socket.socket] = set()
        self._handlers: list[threading.Thread] = []
        self._acceptor: threading.Thread | None = None

    def _start(self) -> None:
        self._acceptor = self._thread(self._accept_loop, "thread-server-accept")

    def _accept_loop(self) -> None:
        listener, wake = self._listener, self._waker[0]
        with selectors.DefaultSelector() as selector:
            selector.register(listener, selectors.EVENT_READ)
            selector.register(wake, selectors.EVENT_READ)
            while not self._stopping.is_set():
                ready = {key.fileobj for key, _ in selector.select(LOOPBACK_TIMEOUT)}
                if wake in ready:
                    return
                while listener in ready:  # take everything the kernel has queued
                    try:
                        conn, _ = listener.accept()
                    except BlockingIOError:
                        break
                    conn.setblocking(True)
                    conn.settimeout(LOOPBACK_TIMEOUT)
                    with self._lock:
                        self._connections.add(conn)
                        if len(self._handlers) >= 64:  # keep only threads still running
                            self._handlers = [t for t in self._handlers if t.is_alive()]
                        self._handlers.append(
                            self._thread(self._connection_thread, "thread-server", conn))

    def _connection_thread(self, conn: socket.socket) -> None:
        try:
            self._serve(conn)
        finally:
            with self._lock:
                self._connections.discard(conn)
                self.served += 1
            conn.close()

    def _serve(self, conn: socket.socket) -> None:
        """One connection's thread: plain blocking calls, for this one client only."""
        try:
            while data := conn.recv(65536):  # b'' once the client has closed
                conn.sendall(data)
        except (ConnectionResetError, TimeoutError):
            pass  # the client closed with RST (SO_LINGER 0), or went quiet
        except OSError:
            if not self._stopping.is_set():  # closing the server shuts the socket down
                raise

    def _stop_threads(self) -> list[str]:
        stuck = []
        if self._acceptor is not None:
            self._acceptor.join(THREAD_JOIN_TIMEOUT)
            if self._acceptor.is_alive():
                stuck.append(self._acceptor.name)
        with self._lock:
            connections, handlers = list(self._connections), list(self._handlers)
        for conn in connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)  # wakes a handler blocked in recv()
        deadline = time.monotonic() + THREAD_JOIN_TIMEOUT
        for thread in handlers:
            thread.join(max(0.0, deadline - time.monotonic()))
            if thread.is_alive():
                stuck.append(thread.name)
        for conn in connections:
            conn.close()
        return stuck


# -- one thread, one selectors loop ------------------------------------------------------
def echo_on_ready(key: selectors.SelectorKey, selector: selectors.BaseSelector) -> None:
    """What SelectorEchoServer does when a socket is ready to read.

    The listener is ready: accept(), make the connection non-blocking and register it.
    A connection is ready: recv() and send back what came; b'' (the client closed) or
    ConnectionResetError (the client reset) means the client has gone: unregister, close.
    The messages here are small, so the echo fits in the socket's send buffer at once; a
    server for big replies keeps what is unsent and waits for EVENT_WRITE.
    """
    sock = key.fileobj
    if key.data == LISTENER:
        try:
            connection, _ = sock.accept()
        except BlockingIOError:
            return  # another wake-up took it
        connection.setblocking(False)
        selector.register(connection, selectors.EVENT_READ, CONNECTION)
        return
    try:
        data = sock.recv(65536)
    except ConnectionResetError:
        data = b""
    if data:
        sock.sendall(data)
    else:
        selector.unregister(sock)
        sock.close()


class SelectorEchoServer(_EchoServer):
    """An echo server in one thread: a ``selectors`` loop over non-blocking sockets.

    ``on_ready(key, selector)`` is called for each socket ready to read; ``key.data`` is
    LISTENER ('listener') or whatever it registered connections with (CONNECTION). If it
    raises, the loop stops and the error is kept in ``errors`` (and raised on exit, unless
    ``raise_errors=False``). On exit, ``still_registered`` counts the connections still in the
    selector and ``closed_but_registered`` those closed without unregister(); both are closed.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        *,
        backlog: int = 128,
        on_ready: Callable[[selectors.SelectorKey, selectors.BaseSelector], None] = echo_on_ready,
        raise_errors: bool = True,
    ) -> None:
        super().__init__(host, backlog=backlog)
        if not callable(on_ready):
            raise TypeError(f"on_ready must be a function (key, selector), got {on_ready!r}")
        self.on_ready = on_ready
        self.raise_errors = raise_errors
        self.still_registered = 0
        self.closed_but_registered = 0
        self._selector: selectors.BaseSelector | None = None
        self._loop: threading.Thread | None = None

    def _start(self) -> None:
        self._selector = selectors.DefaultSelector()
        self._selector.register(self._listener, selectors.EVENT_READ, LISTENER)
        self._selector.register(self._waker[0], selectors.EVENT_READ, _WAKE)
        self._loop = self._thread(self._run, "selector-server")

    def _run(self) -> None:
        selector = self._selector
        while not self._stopping.is_set():
            for key, _ in selector.select(LOOPBACK_TIMEOUT):
                if key.data == _WAKE:
                    return
                self.on_ready(key, selector)

    def connection_count(self) -> int:
        """How many connections are registered in the selector now (listener not counted)."""
        if self._selector is None or self._selector.get_map() is None:
            return 0
        return len(self._selector.get_map()) - 2  # the listener and the wake-up socket

    def close(self, *, raise_errors: bool = True) -> None:
        super().close(raise_errors=raise_errors and self.raise_errors)

    def _stop_threads(self) -> list[str]:
        stuck = []
        if self._loop is not None:
            self._loop.join(SHORT_TIMEOUT)
            if self._loop.is_alive():
                # on_ready is blocked in a call on one connection: shutdown() wakes it.
                self._shutdown_connections()
                self._loop.join(THREAD_JOIN_TIMEOUT)
            if self._loop.is_alive():
                return [self._loop.name]  # its sockets stay with it: closing them races
        if self._selector is not None:
            for key in list(self._selector.get_map().values()):
                if key.data in (LISTENER, _WAKE):
                    continue
                if key.fileobj.fileno() < 0:
                    self.closed_but_registered += 1
                else:
                    self.still_registered += 1
                    key.fileobj.close()
            self._selector.close()
        return stuck

    def _shutdown_connections(self) -> None:
        for _ in range(3):  # the loop may change the map while it is read
            try:
                keys = list(self._selector.get_map().values())
                break
            except RuntimeError:
                continue
        else:
            return
        for key in keys:
            if key.data not in (LISTENER, _WAKE):
                with contextlib.suppress(OSError):
                    key.fileobj.shutdown(socket.SHUT_RDWR)


# -- the load test -------------------------------------------------------------------------
def echo_round_trip(
    address: Address, message: bytes = b"ping", *, timeout: float = LOOPBACK_TIMEOUT
) -> bytes:
    """Connect, send ``message``, read until as many bytes came back (or the server closed),
    close with RST (SO_LINGER 0, no TIME_WAIT); return what came back."""
    host, port = loopback_address(address)
    sock = socket.socket(_family(host), socket.SOCK_STREAM)
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
        _close_with_reset(sock)


def time_wait_rows(port: int) -> frozenset[tuple[Address, Address]]:
    """The (local, remote) ends of every TIME_WAIT entry on ``port`` in the kernel's table now.

    A port number is reused: entries left by an earlier program whose server had the same
    number can still be there, so compare with a snapshot taken when the server started.
    """
    from ..kernel.proc_tcp import tcp_sockets
    from ..model.states import TcpState

    return frozenset((row.local, row.remote) for row in tcp_sockets(port)
                     if row.state is TcpState.TIME_WAIT)


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
        text = (f"{self.server}: {self.answered} of {self.connections} connections answered "
                f"in {self.seconds:.2f} s by {self.concurrency} client threads: "
                f"{self.rate:,.0f} connections/s")
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
    shares = [connections // concurrency + (i < connections % concurrency)
              for i in range(concurrency)]

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

        threads = [threading.Thread(target=client, args=(share,), daemon=True,
                                    name=f"handshake-lab-load-{index}")
                   for index, share in enumerate(shares)]
        for thread in threads:
            thread.start()
        try:
            start.wait()
        except threading.BrokenBarrierError:
            errors.append("the client threads did not start")
        began = time.perf_counter()
        join_deadline = time.monotonic() + max_seconds + 3 * timeout + THREAD_JOIN_TIMEOUT
        for thread in threads:
            thread.join(max(0.0, join_deadline - time.monotonic()))
        seconds = time.perf_counter() - began
        stuck = [thread.name for thread in threads if thread.is_alive()]
        if stuck:
            raise RuntimeError(f"load-test client threads still running: {stuck}")
        port = address[1]
    return LoadTestResult(name, port, connections, concurrency, answered[0], seconds,
                          tuple(errors), time_wait_before)
