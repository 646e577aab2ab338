"""The client calls on loopback: connect, send, receive, close, each bounded and reported.

Rules: loopback only (`model.addresses` refuses anything else with a ValueError that says
why); every blocking call has a timeout from `timeouts`; a bad argument is answered with an
error that names the fix. Each call is reported to the trace hook (`trace`), for a Recorder to
hear. ``close(sock, reset=True)`` and `set_linger_zero` are the one place the lab sets
SO_LINGER 0, the "close with RST" that leaves no TIME_WAIT behind.
"""

from __future__ import annotations

import errno
import os
import selectors
import socket
import struct

from ..model.addresses import Address, family_of, loopback_address
from ..timeouts import LOOPBACK_TIMEOUT
from .trace import traced

#: SO_LINGER on, 0 seconds (struct linger): close() sends RST and leaves no TIME_WAIT.
_LINGER_ZERO = struct.pack("ii", 1, 0)


# -- checking what the learner passed ----------------------------------------------
def check_timeout(timeout: object) -> float:
    """`timeout` as seconds, or a ValueError: it must be a positive number."""
    if (
        isinstance(timeout, bool)
        or not isinstance(timeout, (int, float))
        or not 0 < timeout < float("inf")  # also refuses nan, which compares false
    ):
        raise ValueError(f"timeout must be a positive, finite number of seconds, got {timeout!r}")
    return float(timeout)


def check_open(sock: object) -> socket.socket:
    """`sock` if it is an open socket, or an error that says what went wrong."""
    if not isinstance(sock, socket.socket):
        raise TypeError(f"expected a socket, got {type(sock).__name__}")
    if sock.fileno() < 0:
        raise OSError("this socket is already closed: make a new connection")
    return sock


# -- the calls -----------------------------------------------------------------------
def connect(address: Address, *, timeout: float = LOOPBACK_TIMEOUT) -> socket.socket:
    """A new client socket connected to `address`; connect() returns once the handshake is done.

    Raises TimeoutError if the kernel has not finished the handshake within `timeout`
    (a server whose accept queue is full drops the SYN: the client waits in SYN-SENT).
    """
    host, port = loopback_address(address)
    timeout = check_timeout(timeout)
    sock = socket.socket(family_of(host), socket.SOCK_STREAM)
    try:
        sock.settimeout(timeout)
        with traced(sock, "connect()", remote=(host, port)) as call:
            sock.connect((host, port))
            if call.tracer is not None:
                local = sock.getsockname()
                call.tracer.client_port_known(sock, local)
                call.detail = f"local port {local[1]}"
    except TimeoutError as error:
        sock.close()
        raise TimeoutError(
            f"connect() to {host}:{port} did not finish within {timeout:g} s: if that server's "
            "accept queue is full, its kernel drops the SYN and the client waits (notebook 04); "
            "accept() the waiting connections or listen with a bigger backlog"
        ) from error
    except BaseException:
        sock.close()
        raise
    return sock


def start_connect(address: Address) -> socket.socket:
    """A client socket whose connect() has started but not finished: catch the handshake in flight.

    The socket is non-blocking; pass it to `finish_connect` to wait for the handshake.
    """
    host, port = loopback_address(address)
    sock = socket.socket(family_of(host), socket.SOCK_STREAM)
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
    check_open(sock)
    timeout = check_timeout(timeout)
    with traced(sock, "connect() finished"), selectors.DefaultSelector() as selector:
        selector.register(sock, selectors.EVENT_WRITE)
        if not selector.select(timeout):
            raise TimeoutError(
                f"the handshake did not finish within {timeout} s: is the "
                "server's accept queue full? accept() a connection to free it"
            )
        raise_connect_error(sock)
    sock.setblocking(True)
    sock.settimeout(LOOPBACK_TIMEOUT)


def raise_connect_error(sock: socket.socket) -> None:
    """Raise the error a non-blocking connect() ended with (SO_ERROR), if it ended with one."""
    error = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
    if error:
        raise OSError(error, errno.errorcode.get(error, os.strerror(error)))


def send(sock: socket.socket, data: bytes, *, timeout: float = LOOPBACK_TIMEOUT) -> None:
    """Send all of `data`, or raise TimeoutError if the peer stops reading for `timeout`."""
    check_open(sock)
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(
            f"send() takes bytes such as b'hello', got {type(data).__name__}: "
            "encode text first, e.g. 'hello'.encode()"
        )
    sock.settimeout(check_timeout(timeout))
    with traced(sock, "send()") as call:
        sock.sendall(data)
        call.detail = f"{len(data)} bytes"


def receive(
    sock: socket.socket, max_bytes: int = 65536, *, timeout: float = LOOPBACK_TIMEOUT
) -> bytes:
    """One recv(): up to `max_bytes` bytes, b'' when the peer has closed; TimeoutError if none."""
    check_open(sock)
    if isinstance(max_bytes, bool) or not isinstance(max_bytes, int) or max_bytes <= 0:
        raise ValueError(f"max_bytes must be a positive int, got {max_bytes!r}")
    sock.settimeout(check_timeout(timeout))
    with traced(sock, "recv()") as call:
        data = sock.recv(max_bytes)
        call.detail = f"{len(data)} bytes" if data else "b'' (peer closed)"
    return data


def set_linger_zero(sock: socket.socket) -> None:
    """SO_LINGER on, 0 seconds: the next close() sends RST and leaves no TIME_WAIT behind."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_ZERO)


def close(sock: socket.socket, *, reset: bool = False) -> None:
    """close() the socket (recorded); with reset=True, SO_LINGER 0 makes the kernel send RST."""
    if not isinstance(sock, socket.socket):
        raise TypeError(f"expected a socket, got {type(sock).__name__}")
    if sock.fileno() < 0:
        return
    try:
        if reset:
            set_linger_zero(sock)
    finally:
        with traced(sock, "close()"):
            sock.close()
