"""LoopbackServer: the lab's listening socket, accepting by itself or when you say so.

Rules: everything a server promises (loopback only, port 0, one run, threads joined and
their errors raised on exit, the close order) comes from `threaded_server`; this module adds
what the learner chooses: accept in the background and run a handler (`echo` by default),
or leave connections in the accept queue until `accept()` is called; TCP_DEFER_ACCEPT;
keeping each client's SYN (TCP_SAVE_SYN) for `kernel.saved_syn.saved_syn` after accept().
Each call is reported to the trace hook (`trace`), for a Recorder to hear.
"""

from __future__ import annotations

import socket
from collections.abc import Callable

from ..kernel.defer_accept import set_defer_accept
from ..kernel.saved_syn import save_syns
from ..timeouts import LOOPBACK_TIMEOUT
from .clients import check_timeout, receive, send
from .threaded_server import ThreadedServer

Handler = Callable[[socket.socket], None]


def echo(conn: socket.socket) -> None:
    """The default handler: send back whatever arrives, until the client closes.

    A client that resets the connection (SO_LINGER 0, or closing over an echo it never read)
    has simply left: that is normal TCP, so it ends this connection and is not an error.
    A handler of your own decides for itself; its errors are raised when the server stops.
    """
    try:
        while data := receive(conn):
            send(conn, data)
    except (ConnectionResetError, BrokenPipeError):
        return


class LoopbackServer(ThreadedServer):
    """A listening socket on loopback, port chosen by the kernel; a context manager.

    auto_accept=True (the default) accepts in a background thread and runs `handler`
    (echo by default) for each connection in a thread of its own. auto_accept=False leaves
    the connections in the kernel's accept queue until you call `accept()` yourself.
    defer_accept=N sets TCP_DEFER_ACCEPT: the kernel keeps a new connection in
    SYN-RECEIVED until the client sends data (or N seconds pass).
    save_syn=True makes the kernel keep each client's SYN (Linux): `saved_syn(conn)` reads
    it, once, from a connection this server accepted.
    """

    ignore_errors_after_stop = False  # a handler's bug is raised even if it shows at exit

    def __init__(
        self,
        host: str = "127.0.0.1",
        *,
        backlog: int = 128,
        auto_accept: bool = True,
        handler: Handler | None = echo,
        defer_accept: int | None = None,
        save_syn: bool = False,
    ) -> None:
        super().__init__(host, backlog=backlog, name="server")
        if defer_accept is not None and (
            isinstance(defer_accept, bool) or not isinstance(defer_accept, int) or defer_accept <= 0
        ):
            raise ValueError(
                f"defer_accept must be a whole number of seconds > 0, got {defer_accept!r}"
            )
        if auto_accept and handler is None:
            raise ValueError(
                "auto_accept=True needs a handler; pass auto_accept=False to "
                "accept() connections yourself"
            )
        self.auto_accept, self.handler = auto_accept, handler
        self.defer_accept = defer_accept
        if not isinstance(save_syn, bool):
            raise TypeError(f"save_syn must be True or False, got {save_syn!r}")
        self.save_syn = save_syn

    def _configure(self, listener: socket.socket) -> None:
        if self.defer_accept is not None:
            set_defer_accept(listener, self.defer_accept)
        if self.save_syn:  # before listen(): a SYN that came earlier would not be kept
            save_syns(listener)

    def _start(self) -> None:
        if self.auto_accept:
            super()._start()

    def _serve(self, conn: socket.socket) -> None:
        try:
            self.handler(conn)
        except OSError:
            if not self._stopping.is_set():
                raise

    def accept(self, *, timeout: float = LOOPBACK_TIMEOUT) -> socket.socket:
        """Take one finished connection off the accept queue; TimeoutError if none comes."""
        if self.auto_accept:
            raise RuntimeError(
                "this server accepts by itself in a background thread: make it "
                "with LoopbackServer(auto_accept=False) to call accept() yourself"
            )
        listener = self.listener
        timeout = check_timeout(timeout)
        if listener.gettimeout() != timeout:  # a system call each time otherwise
            listener.settimeout(timeout)
        conn = self._accept_one(listener)
        conn.settimeout(LOOPBACK_TIMEOUT)
        return conn
