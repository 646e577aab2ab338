"""Two small echo servers for many clients: a thread per connection, or one selectors loop.

``ThreadPerConnectionEchoServer``: one thread accepts; each connection gets a thread of its own
that makes plain blocking calls. ``SelectorEchoServer``: one thread runs a ``selectors`` loop over
non-blocking sockets; what it does when a socket is ready is one function, ``on_ready(key,
selector)`` (``echo_on_ready`` by default; an exercise replaces it). `load_test` measures them.

Rules: both are `ThreadedServer`s, so loopback only, port 0 (re-running never meets "Address
already in use"), a context manager whose exit closes every socket, joins every thread and
raises what a server thread raised. A client that closes with RST (SO_LINGER 0, as the load
test's do) is a ConnectionResetError from recv(): both servers treat it as the client leaving.
"""

from __future__ import annotations

import contextlib
import selectors
import socket
from collections.abc import Callable

from .threaded_server import ThreadedServer

__all__ = [
    "CONNECTION",
    "LISTENER",
    "SelectorEchoServer",
    "ThreadPerConnectionEchoServer",
    "echo_on_ready",
]

#: ``key.data`` of the listening socket and of accepted connections in a SelectorEchoServer.
LISTENER = "listener"
CONNECTION = "connection"
_WAKE = "wake"  # the loop's own wake-up socket; never handed to on_ready


# -- one thread per connection ----------------------------------------------------------
class ThreadPerConnectionEchoServer(ThreadedServer):
    """An echo server with one accept thread and one thread per connection (blocking calls).

    ``served`` counts the connections whose thread has finished. A connection idle for
    LOOPBACK_TIMEOUT seconds, or reset by its client, ends quietly.
    """

    accept_thread = "thread-server-accept"
    handler_thread = "thread-server"

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


class SelectorEchoServer(ThreadedServer):
    """An echo server in one thread: a ``selectors`` loop over non-blocking sockets.

    ``on_ready(key, selector)`` is called for each socket ready to read; ``key.data`` is
    LISTENER ('listener') or whatever it registered connections with (CONNECTION). If it
    raises, the loop stops and the error is kept in ``errors`` (and raised on exit, unless
    ``raise_errors=False``). When the loop ends, ``still_registered`` counts the connections
    still in the selector and ``closed_but_registered`` those closed without unregister();
    the loop closes them all (it owns them, so no other thread closes a socket under it).
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

    def _start(self) -> None:
        self._listener.setblocking(False)
        self._selector = selectors.DefaultSelector()
        self._selector.register(self._listener, selectors.EVENT_READ, LISTENER)
        self._selector.register(self._background.wake_socket, selectors.EVENT_READ, _WAKE)
        self._start_listener_user(self._run, "selector-server")

    def _run(self) -> None:
        selector = self._selector
        try:
            while not self._stopping.is_set():
                for key, _ in selector.select():
                    if key.data == _WAKE:
                        return
                    self.on_ready(key, selector)
        except BaseException:
            if not self._caused_by_close():
                raise
        finally:
            self._release(selector)

    def _release(self, selector: selectors.BaseSelector) -> None:
        """Count and close the connections the loop leaves in its selector, then close it."""
        with self._lock:
            for key in list(selector.get_map().values()):
                if key.data in (LISTENER, _WAKE):
                    continue
                if key.fileobj.fileno() < 0:
                    self.closed_but_registered += 1
                else:
                    self.still_registered += 1
                    key.fileobj.close()
            selector.close()

    def connection_count(self) -> int:
        """How many connections are registered in the selector now (listener not counted)."""
        if self._selector is None or self._selector.get_map() is None:
            return 0
        return len(self._selector.get_map()) - 2  # the listener and the wake-up socket

    def close(self, *, raise_errors: bool = True) -> None:
        super().close(raise_errors=raise_errors and self.raise_errors)

    def _wake_connections(self) -> None:
        """on_ready is blocked in a call on one connection: shutdown() wakes it."""
        with self._lock:
            selector = self._selector
            if selector is None or selector.get_map() is None:
                return  # the loop has ended and closed its sockets
            for _ in range(3):  # the loop may change the map while it is read
                try:
                    keys = list(selector.get_map().values())
                    break
                except RuntimeError:
                    continue
            else:
                return
            for key in keys:
                if key.data not in (LISTENER, _WAKE):
                    with contextlib.suppress(OSError):
                        key.fileobj.shutdown(socket.SHUT_RDWR)
