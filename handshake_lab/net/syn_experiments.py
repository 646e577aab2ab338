"""Two experiments built on the saved SYN: the clock inside the ISN, and the reuse of a
TIME-WAIT port (each reads the SYNs the server's kernel received, without root, on Linux).

Rules: loopback only; every connect and accept has a timeout; every socket is closed on every
path; the clients close with SO_LINGER 0 unless the experiment needs their TIME-WAIT.
"""

from __future__ import annotations

import contextlib
import errno
import os
import socket
import struct
import time
from dataclasses import dataclass

from ..kernel.drop_counters import tcpext
from ..kernel.lookup import wait_for_state
from ..kernel.saved_syn import require_linux, save_syns, saved_syn
from ..model.addresses import family_of, loopback_host
from ..model.packets import Segment
from ..model.states import TcpState
from ..timeouts import LOOPBACK_TIMEOUT, SHORT_TIMEOUT, poll_until

__all__ = [
    "ISN_TICK_NS",
    "TIME_WAIT_SEQ_JUMP",
    "IsnClock",
    "TimeWaitReuse",
    "isn_clock",
    "time_wait_reuse",
]

_LINGER_ZERO = struct.pack("ii", 1, 0)
#: A connect() that reuses a TIME-WAIT entry starts at that entry's next sequence number plus
#: this (tcp_twsk_unique in net/ipv4/tcp_ipv4.c), above anything the old connection sent.
TIME_WAIT_SEQ_JUMP = 65535 + 2
#: Linux's ISN clock ticks every 64 ns: secure_tcp_seq() adds ktime_get_real_ns() >> 6 to a
#: keyed hash of the four address/port values (seq_scale in net/core/secure_seq.c).
ISN_TICK_NS = 64
#: IP_LOCAL_PORT_RANGE (Linux 6.3+): a socket's own ephemeral port range, low | high << 16.
_IP_LOCAL_PORT_RANGE = 51


# -- connecting from a chosen port, timed on the clock the kernel's ISN uses -----------------
def _listener(host: str) -> socket.socket:
    listener = socket.socket(family_of(host), socket.SOCK_STREAM)
    try:
        listener.settimeout(LOOPBACK_TIMEOUT)
        listener.bind((host, 0))
        save_syns(listener)
        listener.listen(8)
    except BaseException:
        listener.close()
        raise
    return listener


def _accept(listener: socket.socket) -> tuple[socket.socket, Segment]:
    """The next connection, with a timeout, and the SYN that opened it."""
    conn, _ = listener.accept()
    try:
        conn.settimeout(LOOPBACK_TIMEOUT)
        return conn, saved_syn(conn)
    except BaseException:
        conn.close()
        raise


def _reset(sock: socket.socket) -> None:
    """close() with SO_LINGER 0: an RST, and no TIME-WAIT left on the client's port."""
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_ZERO)
    sock.close()


@dataclass(frozen=True)
class IsnClock:
    """Two SYNs of the same address/port pair, `interval` seconds apart, as the server saw them.

    Each connect() was timed on the wall clock the kernel's ISN clock reads (CLOCK_REALTIME,
    time.time_ns()): each SYN left between its `*_before_ns` and `*_after_ns`. The hash is the
    same for the same pair, so the ISN advanced by exactly the 64 ns ticks between the two
    SYNs, and those bounds give the range it must fall in.
    """

    first: Segment
    second: Segment
    first_before_ns: int
    first_after_ns: int
    second_before_ns: int
    second_after_ns: int

    @property
    def interval(self) -> float:
        """Seconds between the first connect() returning and the second being called."""
        return (self.second_before_ns - self.first_after_ns) / 1e9

    @property
    def advance(self) -> int:
        """How far the client's ISN moved (mod 2**32)."""
        return (self.second.seq - self.first.seq) % 2**32

    @property
    def expected(self) -> range:
        """The advances the 64 ns clock allows, given when each connect() started and returned."""
        low = (self.second_before_ns >> 6) - (self.first_after_ns >> 6)
        high = (self.second_after_ns >> 6) - (self.first_before_ns >> 6)
        return range(low, high + 1)

    def __str__(self) -> str:
        return (
            f"same address/port pair {self.first.src[0]}:{self.first.src_port} -> "
            f"{self.first.dst[0]}:{self.first.dst_port}, connected twice {self.interval:.3f} s "
            f"apart: ISN {self.first.seq} then {self.second.seq}, an advance of "
            f"{self.advance:,}; 64 ns ticks in the measured interval: "
            f"{self.expected.start:,} to {self.expected.stop - 1:,}"
        )


def isn_clock(seconds: float = 1.0, host: str = "127.0.0.1") -> IsnClock:
    """Connect twice from the same client port to the same server, `seconds` apart.

    The first client closes with SO_LINGER 0 (RST): a client in TIME-WAIT would hold the port,
    and a connect() that takes over a TIME-WAIT entry starts from the old connection's numbers
    (+ 65,537) instead of the clock-plus-hash ISN. The wait is the experiment: the clock runs.
    """
    require_linux()
    host = loopback_host(host)
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not 0 < seconds <= 60:
        raise ValueError(f"seconds must be a number from 0 to 60, got {seconds!r}")
    with contextlib.closing(_listener(host)) as listener:
        timed = []
        port = 0
        for _ in range(2):
            if timed:  # wait out the rest of the interval: what is measured is the clock
                time.sleep(max(0.0, seconds - (time.time_ns() - timed[-1][2]) / 1e9))
            client = socket.socket(family_of(host), socket.SOCK_STREAM)
            try:
                client.settimeout(LOOPBACK_TIMEOUT)
                client.bind((host, port))
                before = time.time_ns()
                client.connect(listener.getsockname()[:2])
                after = time.time_ns()
                port = client.getsockname()[1]
                conn, syn = _accept(listener)
            finally:
                _reset(client)  # before the server's end closes: neither end keeps a TIME-WAIT
            conn.close()
            timed.append((syn, before, after))
    (first, first_before, first_after), (second, second_before, second_after) = timed
    return IsnClock(first, second, first_before, first_after, second_before, second_after)


# -- TIME-WAIT reuse ------------------------------------------------------------------------
def _sysctl(name: str) -> int | None:
    try:
        with open(os.path.join("/proc/sys/net/ipv4", name), encoding="ascii") as file:
            return int(file.read())
    except (OSError, ValueError):
        return None


@dataclass(frozen=True)
class TimeWaitReuse:
    """What the kernel did with a new connect() whose only allowed port was in TIME-WAIT.

    ``refused_at_once``: the errno of a connect() made just after TIME-WAIT began (None if it
    connected). ``reused_after``: seconds from just before the first client's close() (so
    before TIME-WAIT began) until a connect() got the port (None if none did within the
    wait). ``seq_jump``: the reused SYN's seq minus the old connection's
    next seq; 65,537 says the kernel took over the TIME-WAIT entry. ``why_not``: why this
    machine could not run the experiment ('' when it ran).
    """

    port: int
    tw_reuse: int | None
    tw_reuse_delay_ms: int | None
    refused_at_once: int | None = None
    reused_after: float | None = None
    seq_jump: int | None = None
    why_not: str = ""

    def __str__(self) -> str:
        if self.why_not:
            return self.why_not
        delay = (
            ""
            if self.tw_reuse_delay_ms is None
            else f", tcp_tw_reuse_delay={self.tw_reuse_delay_ms} ms"
        )
        refused = (
            f"refused at once ({errno.errorcode.get(self.refused_at_once, self.refused_at_once)})"
            if self.refused_at_once
            else "not refused at once"
        )
        reused = (
            f"the port was reused {self.reused_after:.3f} s after the first client closed, "
            f"the new SYN's seq = the old connection's next seq + {self.seq_jump:,}"
            if self.reused_after is not None
            else "the port was not reused while we waited"
        )
        limited = f"a connect() limited to port {self.port}"
        return f"tcp_tw_reuse={self.tw_reuse}{delay}: {limited}: {refused}; {reused}"


def _connect_from_only(port: int, address) -> socket.socket | int:
    """A client whose ephemeral range is just `port`, connected; or the connect()'s errno."""
    client = socket.socket(family_of(address[0]), socket.SOCK_STREAM)
    try:
        client.settimeout(LOOPBACK_TIMEOUT)
        client.setsockopt(
            socket.IPPROTO_IP, _IP_LOCAL_PORT_RANGE, struct.pack("I", port | port << 16)
        )
        client.connect(address)
    except OSError as error:
        client.close()
        if error.errno == errno.ENOPROTOOPT:
            raise
        return error.errno or errno.EIO
    except BaseException:
        client.close()
        raise
    return client


#: TcpExt's count of connections that closed without a TIME-WAIT entry because the table
#: held tcp_max_tw_buckets of them (LINUX_MIB_TCPTIMEWAITOVERFLOW, net/ipv4/tcp_minisocks.c).
_TIME_WAIT_OVERFLOW = "TCPTimeWaitOverflow"


def _why_no_time_wait(local, overflows_before: int) -> str:
    grown = tcpext().get(_TIME_WAIT_OVERFLOW, 0) - overflows_before
    if grown <= 0:
        return f"the client's end {local} did not reach TIME-WAIT"
    return (
        f"the client's end {local} closed without a TIME-WAIT entry: the kernel's TIME-WAIT "
        f"table is full (net.ipv4.tcp_max_tw_buckets = {_sysctl('tcp_max_tw_buckets')}; "
        f"{_TIME_WAIT_OVERFLOW} grew by {grown}). Entries leave it as their timers end: "
        "run this again once a load test's TIME-WAIT rows have expired"
    )


def time_wait_reuse(host: str = "127.0.0.1", *, wait: float = SHORT_TIMEOUT) -> TimeWaitReuse:
    """Leave a client port in TIME-WAIT, then connect() again to the same server, allowed only
    that port (IP_LOCAL_PORT_RANGE): at once, then every 10 ms for up to `wait` seconds.
    """
    require_linux()
    host = loopback_host(host)
    settings = {
        "tw_reuse": _sysctl("tcp_tw_reuse"),
        "tw_reuse_delay_ms": _sysctl("tcp_tw_reuse_delay"),
    }
    overflows_before = tcpext().get(_TIME_WAIT_OVERFLOW, 0)
    with contextlib.closing(_listener(host)) as listener:
        server = listener.getsockname()[:2]
        with socket.create_connection(server, timeout=LOOPBACK_TIMEOUT) as client:
            local = client.getsockname()[:2]
            conn, first = _accept(listener)
            closed = time.monotonic()  # just before close(): TIME-WAIT begins after this
        with conn:  # the client closed first; once its FIN is here, the server closes too
            conn.recv(1)
        if wait_for_state(local, server, state=TcpState.TIME_WAIT) is not TcpState.TIME_WAIT:
            raise RuntimeError(_why_no_time_wait(local, overflows_before))
        try:
            at_once = _connect_from_only(local[1], server)
        except OSError:
            return TimeWaitReuse(
                local[1],
                **settings,
                why_not="this kernel has no IP_LOCAL_PORT_RANGE (Linux 6.3 or later), so a "
                "connect() cannot be limited to the one port in TIME-WAIT",
            )
        attempts = [at_once]

        def connected():
            if not isinstance(attempts[-1], socket.socket):
                attempts.append(_connect_from_only(local[1], server))
            return isinstance(attempts[-1], socket.socket)

        reused = poll_until(connected, timeout=wait, interval=0.01)
        reused_after = time.monotonic() - closed if reused else None
        seq_jump = None
        if reused:
            conn, reused_syn = _accept(listener)
            _reset(attempts[-1])  # first, so that this connection leaves no TIME-WAIT
            conn.close()
            seq_jump = (reused_syn.seq - (first.seq + 2)) % 2**32  # its SYN and FIN count 2
    return TimeWaitReuse(
        local[1],
        **settings,
        refused_at_once=None if isinstance(at_once, socket.socket) else at_once,
        reused_after=reused_after,
        seq_jump=seq_jump,
    )
