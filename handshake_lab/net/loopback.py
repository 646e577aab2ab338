"""Threaded loopback servers and clients whose every call is bounded and recorded.

Rules: loopback only (127.0.0.1 or ::1; anything else is refused with a ValueError that
says why); port 0 so the kernel picks a free port and re-running a cell never meets
"Address already in use"; every blocking call has a timeout from timeouts.py; the server
is a context manager whose exit closes every socket and joins every thread, and an
exception raised in one of its threads is raised again in the caller. Each call made
through these helpers is reported to the trace hook (`trace`), for a Recorder to hear.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import ipaddress
import selectors
import socket
import threading
from collections.abc import Callable

from ..timeouts import LOOPBACK_TIMEOUT, THREAD_JOIN_TIMEOUT
from .trace import traced

Address = tuple[str, int]
_PRUNE_AT = 64  # accepted connections kept before the closed ones are dropped from the list
Handler = Callable[[socket.socket], None]


# -- checking what the learner passed ----------------------------------------------
@functools.lru_cache(maxsize=64)
def loopback_host(host: object) -> str:
    """`host` as a loopback address string, or a clear error."""
    if not isinstance(host, str):
        raise TypeError(f"host must be a string such as '127.0.0.1', got {type(host).__name__}")
    if host == "localhost":
        return "127.0.0.1"
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        raise ValueError(f"{host!r} is not an IP address: use '127.0.0.1' or '::1'") from None
    if not address.is_loopback:
        raise ValueError(f"{host} is not a loopback address: the lab stays on this machine "
                         "(127.0.0.1 or ::1) so no experiment ever touches a real network")
    return str(address)


def loopback_address(address: object) -> Address:
    """A (host, port) pair on loopback, or a clear error that says what to pass."""
    if not isinstance(address, (tuple, list)) or len(address) < 2:
        raise TypeError(f"address must be a (host, port) pair such as server.address, "
                        f"got {address!r}")
    host, port = address[0], address[1]
    if isinstance(port, bool) or not isinstance(port, int):
        raise TypeError(f"port must be an int, got {type(port).__name__}: pass server.address")
    if not 0 < port < 65536:
        raise ValueError(f"port {port} is out of range: TCP ports are 1..65535")
    return loopback_host(host), port


def _family(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def _check_timeout(timeout: object) -> float:
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout <= 0:
        raise ValueError(f"timeout must be a positive number of seconds, got {timeout!r}")
    return float(timeout)


def _check_open(sock: object) -> socket.socket:
    if not isinstance(sock, socket.socket):
        raise TypeError(f"expected a socket, got {type(sock).__name__}")
    if sock.fileno() < 0:
        raise OSError("this socket is already closed: make a new connection")
    return sock


# -- clients --------------------------------------------------------------------------
def connect(address: Address, *, timeout: float = LOOPBACK_TIMEOUT) -> socket.socket:
    """A new client socket connected to `address`; connect() returns once the handshake is done.

    Raises TimeoutError if the kernel has not finished the handshake within `timeout`
    (a server whose accept queue is full drops the SYN: the client waits in SYN-SENT).
    """
    host, port = loopback_address(address)
    timeout = _check_timeout(timeout)
    sock = socket.socket(_family(host), socket.SOCK_STREAM)
    try:
        sock.settimeout(timeout)
        with traced(sock, "connect()", remote=(host, port)) as call:
            sock.connect((host, port))
            if call.tracer is not None:
                local = sock.getsockname()
                call.tracer.client_port_known(sock, local)
                call.detail = f"local port {local[1]}"
    except BaseException:
        sock.close()
        raise
    return sock


def start_connect(address: Address) -> socket.socket:
    """A client socket whose connect() has started but not finished: catch the handshake in flight.

    The socket is non-blocking; pass it to `finish_connect` to wait for the handshake.
    """
    host, port = loopback_address(address)
    sock = socket.socket(_family(host), socket.SOCK_STREAM)
    try:
        sock.setblocking(False)
        with traced(sock, "connect() started", remote=(host, port)) as call:
            code = sock.connect_ex((host, port))
            call.detail = "in progress" if code else "already connected"
            if call.tracer is not None:
                call.tracer.client_port_known(sock, sock.getsockname())
    except BaseException:
        sock.close()
        raise
    return sock


def finish_connect(sock: socket.socket, *, timeout: float = LOOPBACK_TIMEOUT) -> None:
    """Wait until a `start_connect` socket is connected; raise its error or TimeoutError."""
    _check_open(sock)
    timeout = _check_timeout(timeout)
    with traced(sock, "connect() finished"), \
            selectors.DefaultSelector() as selector:
        selector.register(sock, selectors.EVENT_WRITE)
        if not selector.select(timeout):
            raise TimeoutError(f"the handshake did not finish within {timeout} s: is the "
                               "server's accept queue full? accept() a connection to free it")
        error = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if error:
            raise OSError(error, f"connect() failed: {errno.errorcode.get(error, error)}")
    sock.setblocking(True)
    sock.settimeout(LOOPBACK_TIMEOUT)


def send(sock: socket.socket, data: bytes, *, timeout: float = LOOPBACK_TIMEOUT) -> None:
    """Send all of `data`, or raise TimeoutError if the peer stops reading for `timeout`."""
    _check_open(sock)
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(f"send() takes bytes such as b'hello', got {type(data).__name__}: "
                        "encode text first, e.g. 'hello'.encode()")
    sock.settimeout(_check_timeout(timeout))
    with traced(sock, "send()") as call:
        sock.sendall(data)
        call.detail = f"{len(data)} bytes"


def receive(sock: socket.socket, max_bytes: int = 65536, *,
            timeout: float = LOOPBACK_TIMEOUT) -> bytes:
    """One recv(): up to `max_bytes` bytes, b'' when the peer has closed; TimeoutError if none."""
    _check_open(sock)
    if isinstance(max_bytes, bool) or not isinstance(max_bytes, int) or max_bytes <= 0:
        raise ValueError(f"max_bytes must be a positive int, got {max_bytes!r}")
    sock.settimeout(_check_timeout(timeout))
    with traced(sock, "recv()") as call:
        data = sock.recv(max_bytes)
        call.detail = f"{len(data)} bytes" if data else "b'' (peer closed)"
    return data


def close(sock: socket.socket, *, reset: bool = False) -> None:
    """close() the socket (recorded); with reset=True, SO_LINGER 0 makes the kernel send RST."""
    if not isinstance(sock, socket.socket):
        raise TypeError(f"expected a socket, got {type(sock).__name__}")
    if sock.fileno() < 0:
        return
    if reset:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\0\0\0\0\0\0\0")
    with traced(sock, "close()"):
        sock.close()


# -- the server -----------------------------------------------------------------------
def echo(conn: socket.socket) -> None:
    """The default handler: send back whatever arrives, until the client closes."""
    while data := receive(conn):
        send(conn, data)


class LoopbackServer:
    """A listening socket on loopback, port chosen by the kernel; a context manager.

    auto_accept=True (the default) accepts in a background thread and runs `handler`
    (echo by default) for each connection in a thread of its own. auto_accept=False leaves
    the connections in the kernel's accept queue until you call `accept()` yourself.
    defer_accept=N sets TCP_DEFER_ACCEPT: the kernel keeps a new connection in
    SYN-RECEIVED until the client sends data (or N seconds pass).
    """

    def __init__(self, host: str = "127.0.0.1", *, backlog: int = 128,
                 auto_accept: bool = True, handler: Handler | None = echo,
                 defer_accept: int | None = None) -> None:
        self.host = loopback_host(host)
        if isinstance(backlog, bool) or not isinstance(backlog, int) or backlog < 0:
            raise ValueError(f"backlog must be an int >= 0, got {backlog!r}")
        if defer_accept is not None and (isinstance(defer_accept, bool)
                                         or not isinstance(defer_accept, int)
                                         or defer_accept <= 0):
            raise ValueError(f"defer_accept must be a whole number of seconds > 0, "
                             f"got {defer_accept!r}")
        if auto_accept and handler is None:
            raise ValueError("auto_accept=True needs a handler; pass auto_accept=False to "
                             "accept() connections yourself")
        self.backlog, self.auto_accept, self.handler = backlog, auto_accept, handler
        self.defer_accept = defer_accept
        self.connections: list[socket.socket] = []
        self._listener: socket.socket | None = None
        self._address: Address = ("", 0)
        self._threads: list[threading.Thread] = []
        self._errors: list[BaseException] = []
        self._stopping = threading.Event()
        self._waker: tuple[socket.socket, socket.socket] | None = None
        self._lock = threading.Lock()
        self._closed = False

    # -- lifetime -------------------------------------------------------------------
    def __enter__(self) -> LoopbackServer:
        if self._closed or self._listener is not None:
            raise RuntimeError("a LoopbackServer runs once: make a new one")
        listener = socket.socket(_family(self.host), socket.SOCK_STREAM)
        try:
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if self.defer_accept is not None:
                listener.setsockopt(socket.IPPROTO_TCP, socket.TCP_DEFER_ACCEPT,
                                    self.defer_accept)
            listener.bind((self.host, 0))
            self._listener = listener
            self._address = tuple(listener.getsockname()[:2])
            with traced(listener, f"listen({self.backlog})", role="listener"):
                listener.listen(self.backlog)
        except BaseException:
            listener.close()
            self._listener = None
            raise
        if self.auto_accept:
            self._waker = socket.socketpair()
            self._start_thread(self._accept_loop, "accept")
        return self

    def __exit__(self, kind, error, traceback) -> None:
        self.close(raise_errors=error is None)

    def close(self, *, raise_errors: bool = True) -> None:
        """Close every socket, join every thread; raise what a thread raised (idempotent)."""
        if self._closed:
            return
        self._closed = True
        self._stopping.set()
        stuck = []
        if self._waker is not None:
            # The accept thread owns the listener while it runs: stop it before closing it.
            self._waker[1].send(b"x")
            accept_thread = self._threads[0]
            accept_thread.join(THREAD_JOIN_TIMEOUT)
            if accept_thread.is_alive():
                stuck.append(accept_thread.name)
        if self._listener is not None:
            close(self._listener)
        with self._lock:
            connections = list(self.connections)
        for conn in connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)  # wakes a handler blocked in recv()
        for thread in self._threads:
            thread.join(THREAD_JOIN_TIMEOUT)
            if thread.is_alive() and thread.name not in stuck:
                stuck.append(thread.name)
        for conn in connections:
            conn.close()
        if self._waker is not None:
            for end in self._waker:
                end.close()
        if stuck:
            raise RuntimeError(f"threads still running after {THREAD_JOIN_TIMEOUT} s: {stuck}; "
                               "a handler must return when its connection closes")
        if raise_errors and self._errors:
            raise RuntimeError("a server thread failed") from self._errors[0]

    # -- what the learner sees --------------------------------------------------------
    def _require_running(self) -> None:
        if self._listener is None or self._closed:
            raise RuntimeError("the server is not running: use it inside `with LoopbackServer() "
                               "as server:`")

    @property
    def listener(self) -> socket.socket:
        self._require_running()
        return self._listener

    @property
    def address(self) -> Address:
        """The real (host, port) the kernel gave the listening socket."""
        self._require_running()
        return self._address

    @property
    def port(self) -> int:
        return self.address[1]

    def accept(self, *, timeout: float = LOOPBACK_TIMEOUT) -> socket.socket:
        """Take one finished connection off the accept queue; TimeoutError if none comes."""
        if self.auto_accept:
            raise RuntimeError("this server accepts by itself in a background thread: make it "
                               "with LoopbackServer(auto_accept=False) to call accept() yourself")
        listener = self.listener
        timeout = _check_timeout(timeout)
        if listener.gettimeout() != timeout:  # a system call each time otherwise
            listener.settimeout(timeout)
        conn = self._accept_one(listener)
        conn.settimeout(LOOPBACK_TIMEOUT)
        return conn

    def _accept_one(self, listener: socket.socket) -> socket.socket:
        with traced(listener, "accept()", role="listener") as call:
            conn, peer = listener.accept()
            call.detail = f"peer port {peer[1]}"
            if call.tracer is not None:
                call.tracer.track_accepted(conn, self._address, peer)
        with self._lock:
            if len(self.connections) >= _PRUNE_AT:
                # Closed connections need no cleanup: let them go (a long run accepts many).
                self.connections = [c for c in self.connections if c.fileno() >= 0]
            self.connections.append(conn)
        return conn

    # -- the background threads -----------------------------------------------------------
    def _start_thread(self, target: Callable, name: str, *args) -> None:
        def run() -> None:
            try:
                target(*args)
            except BaseException as error:  # raised again in the caller by close()
                self._errors.append(error)
        thread = threading.Thread(target=run, name=f"handshake-lab-{name}", daemon=True)
        self._threads.append(thread)
        thread.start()

    def _accept_loop(self) -> None:
        listener, wake = self._listener, self._waker[0]
        listener.setblocking(False)
        with selectors.DefaultSelector() as selector:
            selector.register(listener, selectors.EVENT_READ)
            selector.register(wake, selectors.EVENT_READ)
            while not self._stopping.is_set():
                ready = [key.fileobj for key, _ in selector.select()]
                if wake in ready:
                    return
                try:
                    conn = self._accept_one(listener)
                except BlockingIOError:
                    continue  # another wake-up took it
                conn.setblocking(True)
                conn.settimeout(LOOPBACK_TIMEOUT)
                self._start_thread(self._handle, "handler", conn)

    def _handle(self, conn: socket.socket) -> None:
        try:
            self.handler(conn)
        except OSError:
            if not self._stopping.is_set():
                raise
        finally:
            close(conn)
