"""What a listener's two queues do when they are full, measured on real sockets with capture.

Two experiments, each run in the current network namespace with whatever sysctls it has:

- ``run_syn_queue_experiment``: listen(backlog) with TCP_DEFER_ACCEPT and silent clients.
  listen(N) also bounds the request sockets of connections half way through the handshake
  (the SYN queue):
  ``tcp_conn_request`` (net/ipv4/tcp_input.c) calls the SYN queue full when it holds more
  than the backlog (``inet_csk_reqsk_queue_is_full``); a SYN that finds it full is answered
  with a SYN cookie when tcp_syncookies allows (TCPReqQFullDoCookies), else dropped
  (TCPReqQFullDrop). A cookie's final ACK creates the connection at once, deferral or not.
- ``run_ack_overflow_experiment``: a connection held in SYN-RECEIVED by TCP_DEFER_ACCEPT
  sends its first data when the accept queue has filled: ``tcp_check_req``
  (net/ipv4/tcp_minisocks.c) cannot create the child (``tcp_v4_syn_recv_sock`` finds the
  accept queue full) and goes to ``listen_overflow``: with tcp_abort_on_overflow=0 it only
  marks the request acked (the client is ESTABLISHED, its data unacknowledged, the server
  retransmits SYN+ACK on its timer); with 1 it answers with RST. A SYN that meets a full
  accept queue is dropped in ``tcp_conn_request`` before that sysctl is ever read.

Rules: they need CAP_NET_RAW (a LoopbackSniffer records the wire); the caller chooses the
sysctls, so they run in a private network namespace (``listen_queue_child``), never by
changing the machine's. Results are frozen dataclasses that go to and from plain dicts (the
child's JSON report, the recording). Every wait is a deadline poll on a kernel counter, a
state or the captured segments.
"""

from __future__ import annotations

import dataclasses
import errno
import socket
import struct
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager

from ..kernel.drop_counters import NETSTAT_PATH, tcpext
from ..kernel.lookup import socket_state, tcp_sockets
from ..kernel.sysctls import kernel_settings
from ..kernel.tcp_info import accept_queue
from ..model.packets import Segment
from ..model.states import TcpState
from ..net.clients import close, connect, send, start_connect
from ..net.server import LoopbackServer
from ..timeouts import KERNEL_TIMER_TIMEOUT, SHORT_TIMEOUT, poll_until
from .sniffer import LoopbackSniffer

__all__ = [
    "AckOverflowResult",
    "SynQueueResult",
    "WireEvent",
    "run_ack_overflow_experiment",
    "run_syn_queue_experiment",
    "tcpext_counters",
]

ABORT_ON_OVERFLOW_PATH = "/proc/sys/net/ipv4/tcp_abort_on_overflow"

#: TCP_DEFER_ACCEPT of the SYN-queue experiment: long enough that no deferral ends during it.
SYN_QUEUE_DEFERRAL = 10
#: TCP_DEFER_ACCEPT of the overflow experiment: 1 s, so the request's timer resends SYN+ACK
#: at its first expiry (syn_ack_recalc in net/ipv4/inet_connection_sock.c resends for an
#: acked request only once the deferral is used up), which shows the server side still waiting.
OVERFLOW_DEFERRAL = 1
#: The counters the experiments read (TcpExt in /proc/net/netstat, include/uapi/linux/snmp.h).
COUNTERS = (
    "TCPReqQFullDoCookies",
    "TCPReqQFullDrop",
    "ListenOverflows",
    "ListenDrops",
    "EmbryonicRsts",
)


def tcpext_counters(path: str = NETSTAT_PATH) -> dict[str, int]:
    """This network namespace's TcpExt counters named in COUNTERS (0 for one a kernel lacks)."""
    values = tcpext(path)
    return {name: values.get(name, 0) for name in COUNTERS}


def _growth(before: dict[str, int]) -> dict[str, int]:
    after = tcpext_counters()
    return {name: after[name] - before[name] for name in COUNTERS}


@dataclasses.dataclass(frozen=True)
class WireEvent:
    """One captured segment of the experiment's watched client, in its own words."""

    seconds: float  # after the watched client's first SYN
    sender: str  # 'client' or 'server'
    flags: str  # 'SYN+ACK', 'PSH+ACK', 'RST' ...
    payload_len: int


@dataclasses.dataclass(frozen=True)
class SynQueueResult:
    """listen(backlog) + TCP_DEFER_ACCEPT + `clients` silent clients, with this tcp_syncookies."""

    syncookies: int
    backlog: int
    clients: int
    server_sides_syn_received: int  # request sockets held by the deferral: the SYN queue
    server_sides_established: int  # created from a SYN cookie's ACK, waiting in the accept queue
    clients_established: int
    clients_syn_sent: int  # their SYN was dropped
    accept_queue_length: int
    counters: dict[str, int]  # growth of each of COUNTERS during the experiment

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> SynQueueResult:
        return cls(**data)


@dataclasses.dataclass(frozen=True)
class AckOverflowResult:
    """A client's first data finds the accept queue full, with this tcp_abort_on_overflow."""

    abort_on_overflow: int
    backlog: int
    client_state: TcpState  # the watched client, after its data met the full queue
    client_error: str | None  # the errno name its recv() raised, e.g. 'ECONNRESET'
    client_unacknowledged: int  # its segments not acknowledged (tcpi_unacked)
    server_side: TcpState | None  # its server side in the TCP table; None once reset
    wire: tuple[WireEvent, ...]  # the watched client's segments
    late_syn_state: TcpState  # a further client whose SYN met the full accept queue
    late_syn_reset: bool  # whether the server answered that SYN with RST
    counters: dict[str, int]

    def count(self, sender: str, flags: str) -> int:
        """How many segments with exactly these flags `sender` sent."""
        return sum(1 for event in self.wire if event.sender == sender and event.flags == flags)

    def to_dict(self) -> dict:
        data = dataclasses.asdict(self)
        data["client_state"] = self.client_state.name
        data["server_side"] = self.server_side.name if self.server_side else None
        data["late_syn_state"] = self.late_syn_state.name
        return data

    @classmethod
    def from_dict(cls, data: dict) -> AckOverflowResult:
        server_side = data["server_side"]
        return cls(
            **{
                **data,
                "client_state": TcpState[data["client_state"]],
                "server_side": TcpState[server_side] if server_side else None,
                "late_syn_state": TcpState[data["late_syn_state"]],
                "wire": tuple(WireEvent(**event) for event in data["wire"]),
            }
        )


@contextmanager
def _clients(server: LoopbackServer, count: int) -> Iterator[list[socket.socket]]:
    """`count` clients whose connect() has started; all closed on exit."""
    with ExitStack() as stack:
        clients = []
        for _ in range(count):
            client = start_connect(server.address)
            stack.callback(close, client)
            clients.append(client)
        yield clients


def _server_sides(server: LoopbackServer, clients: list[socket.socket]) -> list[TcpState]:
    ends = {client.getsockname()[:2] for client in clients}
    return [row.state for row in tcp_sockets(server.port) if row.remote in ends]


def run_syn_queue_experiment(backlog: int = 2, clients: int = 6) -> SynQueueResult:
    """Silent clients against listen(backlog) with TCP_DEFER_ACCEPT; what each side became."""
    syncookies = kernel_settings().syncookies or 0
    before = tcpext_counters()
    with (
        LoopbackServer(
            backlog=backlog, auto_accept=False, defer_accept=SYN_QUEUE_DEFERRAL
        ) as server,
        _clients(server, clients) as sockets,
    ):

        def settled() -> bool:
            # Every client connected or its SYN counted as dropped, and every connected
            # client's server side in the table (a cookie's ACK may still be on its way).
            connected = [socket_state(s) for s in sockets].count(TcpState.ESTABLISHED)
            sides = len(_server_sides(server, sockets))
            return sides == connected and connected + _growth(before)["ListenDrops"] >= clients

        poll_until(settled, timeout=SHORT_TIMEOUT)
        states = [socket_state(s) for s in sockets]
        sides = _server_sides(server, sockets)
        queue = accept_queue(server.listener)
        counters = _growth(before)  # before closing: a FIN to a held request counts too
    return SynQueueResult(
        syncookies=syncookies,
        backlog=backlog,
        clients=clients,
        server_sides_syn_received=sides.count(TcpState.SYN_RECEIVED),
        server_sides_established=sides.count(TcpState.ESTABLISHED),
        clients_established=states.count(TcpState.ESTABLISHED),
        clients_syn_sent=states.count(TcpState.SYN_SENT),
        accept_queue_length=queue.length,
        counters=counters,
    )


def _wire(segments: list[Segment], port: int) -> tuple[WireEvent, ...]:
    """The segments to or from client port `port`, timed from its first SYN."""
    mine = [s for s in segments if port in (s.src_port, s.dst_port)]
    start = mine[0].time if mine else 0.0
    return tuple(
        WireEvent(
            round(s.time - start, 3),
            "client" if s.src_port == port else "server",
            s.flags,
            s.payload_len,
        )
        for s in mine
    )


def _sent(segments: list[Segment], port: int, flags: str) -> int:
    return sum(1 for s in segments if s.dst_port == port and s.flags == flags)


def _read_abort_on_overflow() -> int:
    with open(ABORT_ON_OVERFLOW_PATH, encoding="ascii") as file:
        return int(file.read())


def run_ack_overflow_experiment(backlog: int = 1) -> AckOverflowResult:
    """A client held in SYN-RECEIVED sends data once the accept queue is full; what follows.

    Then one more client connects, to show what a SYN meeting that full queue gets.
    """
    abort = _read_abort_on_overflow()
    before = tcpext_counters()
    with (
        LoopbackServer(
            backlog=backlog, auto_accept=False, defer_accept=OVERFLOW_DEFERRAL
        ) as server,
        LoopbackSniffer(server.port) as sniffer,
        ExitStack() as clients,
    ):
        watched = connect(server.address)  # its bare ACK is ignored: SYN-RECEIVED on the server
        clients.callback(close, watched)
        port = watched.getsockname()[1]
        for _ in range(backlog + 1):  # each sends data, so each is completed: the queue fills
            filler = connect(server.address)
            clients.callback(close, filler)
            send(filler, b"x")
        full = poll_until(
            lambda: accept_queue(server.listener).length > backlog, timeout=SHORT_TIMEOUT
        )
        if not full:
            raise RuntimeError(f"the accept queue did not fill: {accept_queue(server.listener)}")
        # A SYN that meets the full accept queue: dropped, whatever tcp_abort_on_overflow says.
        overflows = tcpext_counters()["ListenOverflows"]
        late = start_connect(server.address)
        clients.callback(close, late)
        late_port = late.getsockname()[1]
        poll_until(lambda: tcpext_counters()["ListenOverflows"] > overflows, timeout=SHORT_TIMEOUT)
        late_state = socket_state(late)
        send(watched, b"hello")  # carries the ACK that finds the accept queue full
        if abort:  # the RST comes back at once
            sniffer.wait_for(lambda segments: _sent(segments, port, "RST") > 0, SHORT_TIMEOUT)
        else:  # the request's timer resends SYN+ACK about a second after the first
            sniffer.wait_for(
                lambda segments: _sent(segments, port, "SYN+ACK") > 1, KERNEL_TIMER_TIMEOUT
            )
        client_error = _pending_error(watched)
        unacknowledged = _unacknowledged(watched)
        client_state = socket_state(watched)
        sides = _server_sides(server, [watched])
        counters = _growth(before)
    return AckOverflowResult(
        abort_on_overflow=abort,
        backlog=backlog,
        client_state=client_state,
        client_error=client_error,
        client_unacknowledged=unacknowledged,
        server_side=sides[0] if sides else None,
        wire=_wire(sniffer.segments, port),
        late_syn_state=late_state,
        late_syn_reset=_sent(sniffer.segments, late_port, "RST") > 0,
        counters=counters,
    )


def _pending_error(sock: socket.socket) -> str | None:
    """The errno name a recv() on `sock` raises now (e.g. 'ECONNRESET'), or None."""
    sock.setblocking(False)
    try:
        sock.recv(1)
    except BlockingIOError:
        return None  # nothing to read and no error: the connection is still open
    except OSError as error:
        return errno.errorcode.get(error.errno or 0, repr(error))
    return None


def _unacknowledged(sock: socket.socket) -> int:
    """tcpi_unacked of a connected socket: its segments sent and not yet acknowledged."""
    raw = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 104)
    return struct.unpack_from("8B24I", raw)[12]
