"""The one threaded-server base: a listener on loopback, its threads, and the order it closes.

Every server of the lab (LoopbackServer, the two echo servers) is a `ThreadedServer`, the
way socketserver's servers are BaseServers. Rules:

- Loopback only, port 0: the kernel picks a free port, so re-running a cell never meets
  "Address already in use" (SO_REUSEADDR as well, so that a port this server leaves in
  TIME_WAIT can be bound again at once). `address` and `port` are the real ones, read back
  with getsockname(); outside ``with`` they are a RuntimeError that says how to use it.
- A server runs once, as a context manager. Its threads run through one `Background`, so
  they start in a copy of the caller's context (a Recorder hears their calls) and what they
  raise is raised again by close().
- close() stops the threads that use the listener before it closes the listener, then shuts
  down every connection (a handler blocked in recv() wakes with b''), joins every thread
  within one deadline, closes the connections and raises what a thread raised. A thread
  closes its own connection under the server's lock, so shutdown() never meets a reused fd.
  Where the ``with`` block raised, its error goes on, with a note naming the thread's error
  (exception notes: Python 3.11 and later).
- Accepted connections are kept in ``connections`` for that shutdown; the closed ones are
  dropped as new ones come, so a server that runs for hours keeps a short list.
"""

from __future__ import annotations

import contextlib
import os
import selectors
import socket
import threading
import time

from ..model.addresses import Address, family_of, loopback_host
from ..timeouts import LOOPBACK_TIMEOUT, SHORT_TIMEOUT, THREAD_JOIN_TIMEOUT
from .background import Background
from .clients import close
from .trace import traced

#: Accepted connections kept before the closed ones are dropped from the list.
_PRUNE_AT = 64


class ThreadedServer:
    """A listening socket on loopback whose threads run through one Background.

    The base accepts in one thread (`accept_thread`) and serves each connection in a thread
    of its own (`handler_thread`) by calling `_serve(conn)`; a subclass overrides `_serve`,
    or `_start` to run other threads. ``served`` counts the connection threads that ended.
    """

    #: Names of the accept thread and of each connection's thread (``handshake-lab-NAME``).
    accept_thread = "accept"
    handler_thread = "handler"
    #: Whether an error a thread raises after close() began is dropped (sockets closing
    #: under a thread make it fail) rather than raised again. The server decides, in the
    #: thread, before the thread closes anything a client could see: an error raised before
    #: close() began is never dropped, however late the thread hands it to the Background.
    ignore_errors_after_stop = True

    def __init__(
        self, host: str = "127.0.0.1", *, backlog: int = 128, name: str | None = None
    ) -> None:
        self.host = loopback_host(host)
        self._family = family_of(self.host)
        if isinstance(backlog, bool) or not isinstance(backlog, int) or backlog < 0:
            raise ValueError(f"backlog must be an int >= 0, got {backlog!r}")
        self.backlog = backlog
        self.served = 0
        self.connections: list[socket.socket] = []
        self._background = Background(name or type(self).__name__, join_timeout=THREAD_JOIN_TIMEOUT)
        self._stopping = self._background.stopping
        self._listener_users: list[threading.Thread] = []
        self._listener: socket.socket | None = None
        self._address: Address = ("", 0)
        self._lock = threading.Lock()
        self._started = self._closed = False

    # -- lifetime -------------------------------------------------------------------
    def __enter__(self):
        if self._started:
            raise RuntimeError(f"a {type(self).__name__} runs once: make a new one")
        self._started = True
        listener = socket.socket(self._family, socket.SOCK_STREAM)
        try:
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            self._configure(listener)
            listener.bind((self.host, 0))
            self._address = tuple(listener.getsockname()[:2])
            with traced(listener, f"listen({self.backlog})", role="listener"):
                listener.listen(self.backlog)
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
        if error is not None and self.errors and hasattr(error, "add_note"):  # Python 3.11+
            # The block's error is raised, but it may be what a thread's failure caused (a
            # reset, an empty reply): the traceback says that a thread failed, and how.
            failed = self.errors[0]
            error.add_note(
                f"Meanwhile a {type(self).__name__} thread failed: "
                f"{type(failed).__name__}: {failed}"
            )

    def close(self, *, raise_errors: bool = True) -> None:
        """Stop, close every socket, join every thread; raise what a thread raised (idempotent)."""
        if self._closed or not self._started:
            return
        self._closed = True
        background = self._background
        background.stop()
        deadline = time.monotonic() + background.join_timeout

        def left() -> float:
            return max(0.0, deadline - time.monotonic())

        # The threads that use the listener stop before it is closed. One that does not stop
        # at once is blocked in a call on a connection: shutting the connections down wakes it.
        if background.join(self._listener_users, timeout=min(SHORT_TIMEOUT, left())):
            self._wake_connections()
            background.join(self._listener_users, timeout=left())
        if self._listener is not None:
            close(self._listener)
        self._wake_connections()
        try:
            background.close(raise_errors=raise_errors, deadline=deadline)
        finally:
            with self._lock:
                connections, self.connections = self.connections, []
                for conn in connections:
                    conn.close()

    # -- what the learner sees --------------------------------------------------------
    def _require_running(self) -> None:
        if self._listener is None or self._closed:
            raise RuntimeError(
                f"the server is not running: use it inside `with "
                f"{type(self).__name__}() as server:`"
            )

    @property
    def listener(self) -> socket.socket:
        """The listening socket (for accept_queue(), select() and the like)."""
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

    @property
    def errors(self) -> list[BaseException]:
        """What the server's threads raised, first one first."""
        return self._background.errors

    # -- what a subclass may change ------------------------------------------------------
    def _configure(self, listener: socket.socket) -> None:
        """Set options on the listener before bind() (none by default)."""

    def _start(self) -> None:
        """Start the threads: by default one that accepts and serves each connection."""
        self._start_listener_user(self._accept_loop, self.accept_thread)

    def _serve(self, conn: socket.socket) -> None:  # pragma: no cover - each server serves
        raise NotImplementedError

    def _wake_connections(self) -> None:
        """shutdown() every connection: a thread blocked in recv() on one wakes with b''."""
        with self._lock:
            for conn in self.connections:
                with contextlib.suppress(OSError):  # closed already, or never connected
                    conn.shutdown(socket.SHUT_RDWR)

    # -- the threads ----------------------------------------------------------------------
    def _start_listener_user(self, target, name: str) -> None:
        """Start a thread that uses the listener: close() stops it before closing the listener."""
        self._listener_users.append(self._background.start(target, name=name))

    def _accept_one(self, listener: socket.socket) -> socket.socket:
        """accept() one connection (reported to the trace hook) and keep it for close()."""
        with traced(listener, "accept()", role="listener") as call:
            # What socket.accept() does, less its two enum conversions (family, type) and
            # its setblocking(True), which cost more than the system call: every caller
            # sets the connection's timeout next.
            fd, peer = listener._accept()
            try:
                conn = socket.socket(self._family, socket.SOCK_STREAM, 0, fileno=fd)
            except BaseException:
                os.close(fd)
                raise
            if call.tracer is not None:
                call.detail = f"peer port {peer[1]}"
                call.tracer.track_accepted(conn, self._address, peer)
        with self._lock:
            if len(self.connections) >= _PRUNE_AT:
                # Closed connections need no cleanup: let them go (a long run accepts many).
                self.connections = [c for c in self.connections if c.fileno() >= 0]
            self.connections.append(conn)
        return conn

    def _accept_loop(self) -> None:
        """Sleep in a selector until a connection is queued or stop() is called."""
        listener, wake = self._listener, self._background.wake_socket
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
                    continue  # the client left before accept(): nothing is queued now
                conn.setblocking(True)
                conn.settimeout(LOOPBACK_TIMEOUT)
                self._background.start(self._connection_thread, conn, name=self.handler_thread)

    def _caused_by_close(self) -> bool:
        """Whether an error a thread has just caught is to be dropped: close() began first."""
        return self.ignore_errors_after_stop and self._stopping.is_set()

    def _connection_thread(self, conn: socket.socket) -> None:
        try:
            self._serve(conn)
        except BaseException:
            if not self._caused_by_close():
                raise
        finally:
            with self._lock:
                close(conn)
                self.served += 1
