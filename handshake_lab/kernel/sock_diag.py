"""Ask the kernel for the state of one TCP connection by its addresses (NETLINK_SOCK_DIAG).

This is what `ss` uses, and it needs no privileges. An exact lookup by the four-tuple is a
hash-table lookup in the kernel, so its cost does not grow with the other sockets on the
machine (a load test can leave tens of thousands of TIME_WAIT rows in /proc/net/tcp). It
also finds connections no process holds a descriptor for: one not yet accepted (in the
accept queue, or a SYN_RECV request socket still half way through the handshake) and one
already closed (FIN_WAIT2, TIME_WAIT).

Linux only; `SockDiag.available()` says whether this kernel lets us use it.
"""

from __future__ import annotations

import errno
import functools
import socket
import struct
from typing import NamedTuple

from .. import platforms
from ..model.addresses import Address, family_of
from ..model.states import TcpState
from .recvmmsg import DatagramReceiver

_NETLINK_SOCK_DIAG = 4
_SOCK_DIAG_BY_FAMILY = 20
_NLM_F_REQUEST = 0x1
_NLMSG_ERROR = 0x2
_NLMSG_HEADER = struct.Struct("=IHHII")
# One whole request: struct nlmsghdr, then struct inet_diag_req_v2 with its inet_diag_sockid
# (include/uapi/linux/inet_diag.h). Ports go in network byte order (htons), addresses as
# inet_pton gives them, the interface and the cookie in host order.
_REQUEST = struct.Struct("=IHHIIBBBxIHH16s16sIII")
_NO_COOKIE = 0xFFFFFFFF
_SEQUENCE_OFFSET, _PORTS_OFFSET = 8, 24  # of nlmsg_seq; of idiag_sport and idiag_dport
# A template's three constant parts around the sequence number and the (htons'd) ports.
_FILLED = struct.Struct(
    f"={_SEQUENCE_OFFSET}sI{_PORTS_OFFSET - _SEQUENCE_OFFSET - 4}sHH"
    f"{_REQUEST.size - _PORTS_OFFSET - 4}s"
)
_BATCH = 64  # requests per datagram: well under the netlink message size limit
_TIMEOUT = 1.0  # the kernel answers while send() runs; this only bounds a broken kernel
_INODE = struct.Struct("=I")
_ERROR = struct.Struct("=i")  # struct nlmsgerr begins with the negative errno
_STATES = {state.code: state for state in TcpState}
_REPLY_INODE_OFFSET = 4 + 48 + 16  # after family..retrans, the sockid, expires..uid


@functools.lru_cache(maxsize=256)
def _packed_address(family: int, host: str) -> bytes:
    return socket.inet_pton(family, host).ljust(16, b"\0")


class Request(NamedTuple):
    """A prepared lookup of one connection: built once, sent at every sample."""

    sequence: int
    message: bytes
    remote_port: int


@functools.lru_cache(maxsize=64)
def _template(local_host: str, remote_host: str) -> tuple[bytes, bytes, bytes]:
    """The request for this pair of hosts cut around the sequence number and the ports, the
    only parts that change from one connection to the next."""
    family = family_of(local_host)
    whole = _REQUEST.pack(
        _REQUEST.size,
        _SOCK_DIAG_BY_FAMILY,
        _NLM_F_REQUEST,
        0,
        0,
        family,
        socket.IPPROTO_TCP,
        0,
        0xFFFFFFFF,
        0,
        0,
        _packed_address(family, local_host),
        _packed_address(family, remote_host),
        0,
        _NO_COOKIE,
        _NO_COOKIE,
    )
    return (
        whole[:_SEQUENCE_OFFSET],
        whole[_SEQUENCE_OFFSET + 4 : _PORTS_OFFSET],
        whole[_PORTS_OFFSET + 4 :],
    )


def _request(sequence: int, local: Address, remote: Address) -> Request:
    before, between, after = _template(local[0], remote[0])
    message = _FILLED.pack(
        before, sequence, between, socket.htons(local[1]), socket.htons(remote[1]), after
    )
    return Request(sequence, message, remote[1])


def _decode_reply(kind: int, buffer, offset: int, remote_port: int):
    """(state, inode) from the reply body at `offset`, or None when there is no such connection."""
    if kind == _NLMSG_ERROR:
        (error,) = _ERROR.unpack_from(buffer, offset)
        if -error == errno.ENOENT:
            return None
        raise OSError(-error, f"sock_diag lookup failed: {errno.errorcode.get(-error)}")
    if (buffer[offset + 6] << 8 | buffer[offset + 7]) != remote_port:
        return None  # no connection with that tuple: the kernel answered with the listener
    return _STATES[buffer[offset + 1]], _INODE.unpack_from(buffer, offset + _REPLY_INODE_OFFSET)[0]


class SockDiag:
    """A netlink socket for exact TCP state lookups; a context manager that closes it."""

    def __init__(self) -> None:
        self._sock = socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, _NETLINK_SOCK_DIAG)
        self._sequence = 0
        # One reply is under 200 bytes; a batch's replies come in at most _BATCH datagrams.
        self._receiver = DatagramReceiver(self._sock, count=_BATCH, size=512)

    @staticmethod
    def available() -> bool:
        """True where this process may open a sock_diag netlink socket (Linux)."""
        if not platforms.is_linux() or not hasattr(socket, "AF_NETLINK"):
            return False
        try:
            with SockDiag() as diag:
                diag.lookup(("127.0.0.1", 1), ("127.0.0.1", 1))
        except OSError:
            return False
        return True

    def lookup(self, local: Address, remote: Address) -> tuple[TcpState, int] | None:
        """The (state, inode) of the connection local -> remote, or None if the kernel has none.

        The inode is 0 for a connection no process holds a descriptor for yet (or any more).
        """
        return self.lookup_many([(local, remote)])[0]

    def lookup_many(self, pairs: list[tuple[Address, Address]]) -> list:
        """lookup() for many connections, sent in batches."""
        return self.lookup_requests([self.request(local, remote) for local, remote in pairs])

    def request(self, local: Address, remote: Address) -> Request:
        """A prepared lookup of local -> remote, to keep and pass to lookup_requests."""
        self._sequence += 1
        return _request(self._sequence, local, remote)

    def lookup_requests(self, requests: list[Request]) -> list:
        """The (state, inode) or None for each request, up to _BATCH per send()."""
        results = []
        for start in range(0, len(requests), _BATCH):
            results.extend(self._lookup_batch(requests[start : start + _BATCH]))
        return results

    def _lookup_batch(self, requests: list[Request]) -> list:
        self._sock.send(b"".join([request.message for request in requests]))
        # The kernel answers the requests in the order they were sent, while send() runs; a
        # reply whose sequence number is not the next one expected is a late answer to an
        # abandoned batch, and is skipped.
        results: list = []
        wanted = len(requests)
        while len(results) < wanted:
            for datagram in self._receiver.receive(wanted - len(results), _TIMEOUT):
                offset = 0
                while offset < len(datagram) and len(results) < wanted:
                    length, kind, _flags, sequence, _pid = _NLMSG_HEADER.unpack_from(
                        datagram, offset
                    )
                    request = requests[len(results)]
                    if sequence == request.sequence:
                        results.append(
                            _decode_reply(
                                kind, datagram, offset + _NLMSG_HEADER.size, request.remote_port
                            )
                        )
                    offset += (length + 3) & ~3
        return results

    def close(self) -> None:
        self._receiver.close()
        self._sock.close()

    def __enter__(self) -> SockDiag:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
