"""One port's rows of the kernel's TCP table, filtered by the kernel (a NETLINK_SOCK_DIAG dump).

Reading /proc/net/tcp makes the kernel print every TCP socket and Python split every line to
keep one port's: after a load test that is tens of thousands of TIME_WAIT rows. A sock_diag
dump carries a filter (a small bytecode in the INET_DIAG_REQ_BYTECODE attribute, what `ss`
sends for ``sport = :N or dport = :N``) that the kernel runs on each socket, so only the
port's sockets cross into Python. One request covers IPv4 and IPv6: the TCPDIAG_GETSOCK
form, which `ss` sends when no family is named (SOCK_DIAG_BY_FAMILY takes one family per
dump, and each dump walks the kernel's whole connection table). No privileges; Linux only.

The rows are `TcpSocketRow`s, the same sockets /proc/net/tcp and tcp6 list (listeners,
connections, SYN_RECV request sockets, TIME_WAIT), IPv4's first as there, with the same
fields, decoded as follows (net/ipv4/inet_diag.c, tcp_diag.c; /proc: net/ipv4/tcp_ipv4.c):

- timer_seconds: sock_diag gives milliseconds, /proc clock ticks; both become seconds.
- a LISTEN row: rx_queue is the accept queue's length in both; sock_diag puts the backlog
  limit in the send-queue field, so tx_queue is set to 0, what /proc prints for a listener.
- a SYN_RECV request socket: sock_diag gives uid 0 (/proc prints its listener's uid), so it
  takes the uid of the listener on its local port when that listener is in the same dump.
- retransmits: sock_diag counts keepalive or zero-window probes while one of those timers
  runs (/proc prints the retransmission count), and 0 when no timer runs.
"""

from __future__ import annotations

import dataclasses
import errno
import socket
import struct

from ..model.states import TcpState
from .proc_tcp import TIMER_NAMES, TcpSocketRow

_NETLINK_SOCK_DIAG = 4
_TCPDIAG_GETSOCK = 18
_NLM_F_REQUEST, _NLM_F_DUMP = 0x1, 0x300  # NLM_F_DUMP = NLM_F_ROOT | NLM_F_MATCH
_NLMSG_ERROR, _NLMSG_DONE = 2, 3
_INET_DIAG_REQ_BYTECODE = 1
_INET_DIAG_BC_JMP, _INET_DIAG_BC_S_EQ, _INET_DIAG_BC_D_EQ = 1, 11, 12
#: The states /proc lists: ESTABLISHED (1) .. CLOSING (11); asking for SYN_RECV brings the
#: request sockets too. Bit 13 (sockets bound but not listening, Linux 6.5+) is left out:
#: /proc never lists those.
_STATES = (1 << 12) - 1
_NO_COOKIE = 0xFFFFFFFF
_SEQUENCE = 1  # one request per socket: its replies carry this number
_TIMEOUT = 1.0  # the kernel fills each reply during recv(); this only bounds a broken kernel
_BUFFER = 65536  # more than the largest dump datagram the kernel sends (32 KiB)

_HEADER = struct.Struct("=IHHII")  # struct nlmsghdr
# struct inet_diag_req: family (none: both), address lengths, ext; the sockid (ports and
# addresses empty, interface, cookie); the states; dbs.
_REQUEST = struct.Struct("=4x36xIIIII")
_ATTRIBUTE = struct.Struct("=HH")  # struct nlattr: length, type
_OP = struct.Struct("=BBH")  # struct inet_diag_bc_op: code, yes, no
# struct inet_diag_msg: family, state, timer, retrans; sport, dport (network order); src,
# dst; interface; cookie; expires (ms), rqueue, wqueue, uid, inode.
_MESSAGE = struct.Struct("=BBBB2s2s16s16sI8xIIIII")
_ERROR = struct.Struct("=i")


def port_filter(port: int) -> bytes:
    """The bytecode "local port is `port` or remote port is `port`", as ss compiles it.

    Each op jumps forward by `yes` bytes when its condition holds and by `no` when not;
    landing exactly on the end accepts the socket, 4 bytes past it rejects it. S_EQ and D_EQ
    take two ops: the second only carries the port (host order) in its `no` field.
    """
    return b"".join(
        [
            _OP.pack(_INET_DIAG_BC_S_EQ, 8, 12),  # local port: yes -> the JMP, no -> D_EQ
            _OP.pack(0, 0, port),
            _OP.pack(_INET_DIAG_BC_JMP, 4, 12),  # always "no": 12 bytes on, the end: accept
            _OP.pack(_INET_DIAG_BC_D_EQ, 8, 12),  # remote port: yes -> end, no -> reject
            _OP.pack(0, 0, port),
        ]
    )


def dump_request(port: int) -> bytes:
    """The netlink message asking for every TCP socket (IPv4 and IPv6) with `port` at one end."""
    bytecode = port_filter(port)
    body = (
        _REQUEST.pack(0, _NO_COOKIE, _NO_COOKIE, _STATES, 0)
        + _ATTRIBUTE.pack(_ATTRIBUTE.size + len(bytecode), _INET_DIAG_REQ_BYTECODE)
        + bytecode
    )
    flags = _NLM_F_REQUEST | _NLM_F_DUMP
    return _HEADER.pack(_HEADER.size + len(body), _TCPDIAG_GETSOCK, flags, _SEQUENCE, 0) + body


def decode_message(body, offset: int = 0) -> TcpSocketRow:
    """One struct inet_diag_msg as a row, its fields decoded the way /proc's are."""
    (
        family,
        state,
        timer,
        retrans,
        sport,
        dport,
        src,
        dst,
        _,
        expires,
        rqueue,
        wqueue,
        uid,
        inode,
    ) = _MESSAGE.unpack_from(body, offset)
    size = 4 if family == socket.AF_INET else 16
    state = TcpState.from_code(state)
    return TcpSocketRow(
        local=(socket.inet_ntop(family, src[:size]), int.from_bytes(sport, "big")),
        remote=(socket.inet_ntop(family, dst[:size]), int.from_bytes(dport, "big")),
        state=state,
        tx_queue=0 if state is TcpState.LISTEN else wqueue,
        rx_queue=rqueue,
        timer=TIMER_NAMES.get(timer, f"timer {timer}"),
        timer_seconds=expires / 1000,
        retransmits=retrans,
        uid=uid,
        inode=inode,
    )


def read_port(port: int) -> list[TcpSocketRow]:
    """The TCP sockets (IPv4, then IPv6) whose local or remote port is `port`.

    OSError where this kernel has no sock_diag or refuses the request (EINVAL, EOPNOTSUPP).
    """
    with socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, _NETLINK_SOCK_DIAG) as sock:
        sock.settimeout(_TIMEOUT)
        sock.send(dump_request(port))
        rows = _receive_dump(sock)
    rows.sort(key=lambda row: ":" in row.local[0])  # IPv4 first, as /proc lists them
    return _with_listener_uids(rows)


def _receive_dump(sock: socket.socket) -> list[TcpSocketRow]:
    """The rows of a multipart reply, up to its NLMSG_DONE; an NLMSG_ERROR raises OSError."""
    buffer = bytearray(_BUFFER)
    rows: list[TcpSocketRow] = []
    while True:
        size, _, flags, _ = sock.recvmsg_into([buffer])
        if flags & socket.MSG_TRUNC:
            raise OSError(errno.EMSGSIZE, "a sock_diag reply did not fit the buffer")
        offset = 0
        while offset + _HEADER.size <= size:
            length, kind, _, seq, _ = _HEADER.unpack_from(buffer, offset)
            if length < _HEADER.size:
                raise OSError(errno.EPROTO, f"malformed netlink message (length {length})")
            body = offset + _HEADER.size
            offset += (length + 3) & ~3
            if seq != _SEQUENCE:
                continue  # not an answer to this request
            if kind in (_NLMSG_DONE, _NLMSG_ERROR):
                # Both carry an errno: an ERROR refuses the request, a DONE with one ends a
                # dump that failed part way.
                (error,) = _ERROR.unpack_from(buffer, body) if length > _HEADER.size else (0,)
                if error < 0:
                    raise OSError(-error, f"sock_diag dump failed: {errno.errorcode.get(-error)}")
                if kind == _NLMSG_DONE:
                    return rows
                continue  # an acknowledgement
            rows.append(decode_message(buffer, body))


def _with_listener_uids(rows: list[TcpSocketRow]) -> list[TcpSocketRow]:
    """Request sockets carry their listener's uid in /proc; sock_diag gives them 0."""
    listeners = {row.local[1]: row.uid for row in rows if row.state is TcpState.LISTEN}
    return [
        dataclasses.replace(row, uid=listeners[row.local[1]])
        if row.state is TcpState.SYN_RECEIVED and row.local[1] in listeners
        else row
        for row in rows
    ]
