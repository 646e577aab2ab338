"""Receive many datagrams with one system call (Linux's recvmmsg), for sock_diag's replies.

Python's socket module has no recvmmsg, so a batch of N sock_diag lookups would cost N
recv() calls after the one send(). The kernel answers every lookup while send() runs, so all
the replies are already queued: one recvmmsg() takes them all. ctypes calls the C library's
recvmmsg (releasing the GIL, as any ctypes call does); where it is missing, `receive` falls
back to one recv_into() per datagram. Linux only, like sock_diag itself.
"""

from __future__ import annotations

import ctypes
import errno
import os
import select
import socket

_MSG_WAITFORONE = 0x10000  # block for the first datagram only (linux/socket.h)


class _IOVec(ctypes.Structure):
    _fields_ = [("base", ctypes.c_void_p), ("length", ctypes.c_size_t)]


class _MsgHdr(ctypes.Structure):  # struct msghdr, as on every 64- and 32-bit Linux ABI
    _fields_ = [
        ("name", ctypes.c_void_p),
        ("namelen", ctypes.c_uint32),
        ("iov", ctypes.POINTER(_IOVec)),
        ("iovlen", ctypes.c_size_t),
        ("control", ctypes.c_void_p),
        ("controllen", ctypes.c_size_t),
        ("flags", ctypes.c_int),
    ]


class _MMsgHdr(ctypes.Structure):
    _fields_ = [("header", _MsgHdr), ("length", ctypes.c_uint)]


def _load_recvmmsg():
    try:
        # The C library is already loaded in this process: dlopen(NULL) finds its symbols
        # without ctypes.util.find_library, which imports subprocess and runs ldconfig.
        function = ctypes.CDLL(None, use_errno=True).recvmmsg
    except (OSError, AttributeError):
        return None
    function.argtypes = [
        ctypes.c_int,
        ctypes.POINTER(_MMsgHdr),
        ctypes.c_uint,
        ctypes.c_int,
        ctypes.c_void_p,
    ]
    function.restype = ctypes.c_int
    return function


_recvmmsg = _load_recvmmsg()


class DatagramReceiver:
    """Up to `count` datagrams of at most `size` bytes each per receive() on one socket."""

    def __init__(self, sock: socket.socket, *, count: int = 64, size: int = 512) -> None:
        self._sock, self.count, self.size = sock, count, size
        self._buffer = ctypes.create_string_buffer(count * size)
        self._view = memoryview(self._buffer).cast("B")
        self._vectors = (_IOVec * count)()
        self._messages = (_MMsgHdr * count)()
        base = ctypes.addressof(self._buffer)
        for index in range(count):
            self._vectors[index].base = base + index * size
            self._vectors[index].length = size
            self._messages[index].header.iov = ctypes.pointer(self._vectors[index])
            self._messages[index].header.iovlen = 1

    def receive(self, wanted: int, timeout: float) -> list[memoryview]:
        """At least one and at most min(wanted, count) datagrams; TimeoutError if none come."""
        wanted = min(wanted, self.count)
        if _recvmmsg is None:
            return [self._receive_one(timeout)]
        while True:
            received = _recvmmsg(
                self._sock.fileno(),
                self._messages,
                wanted,
                _MSG_WAITFORONE | socket.MSG_DONTWAIT,
                None,
            )
            if received >= 0:
                return [
                    self._view[i * self.size : i * self.size + self._messages[i].length]
                    for i in range(received)
                ]
            code = ctypes.get_errno()
            if code not in (errno.EAGAIN, errno.EWOULDBLOCK, errno.EINTR):
                raise OSError(code, os.strerror(code))
            if code != errno.EINTR:
                self._wait_readable(timeout)

    def _receive_one(self, timeout: float) -> memoryview:
        self._wait_readable(timeout)
        size = self._sock.recv_into(self._view[: self.size], self.size, socket.MSG_DONTWAIT)
        return self._view[:size]

    def _wait_readable(self, timeout: float) -> None:
        readable, _, _ = select.select([self._sock], [], [], timeout)
        if not readable:
            raise TimeoutError(f"no answer from the kernel within {timeout} s")

    def close(self) -> None:
        self._view.release()
