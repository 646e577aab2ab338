"""TCP states on macOS from `netstat -anv -p tcp`, which any user may run there.

macOS has no /proc/net/tcp and no sock_diag, and psutil lists the whole system's connections
only to root; its `netstat` lists every TCP socket with its state to anyone, including a
connection the kernel has finished that no process has accepted yet. `parse_netstat` reads
that text (pure; tested on output published from real Macs, tests/data/platforms); the
columns it reads (Proto, Recv-Q, Send-Q, local, foreign, state) come first in every version
of Apple's `netstat.tproj/inet.c`, whatever columns later versions add after them.
A reader like the others: `lookup` decides when it is used; it only borrows the row type of
`proc_tcp`. Rules: the command has a timeout; a row it cannot read is skipped, not guessed.
"""

from __future__ import annotations

from .. import platforms
from ..model.states import TcpState
from ..timeouts import SHORT_TIMEOUT
from .proc_tcp import TcpSocketRow

__all__ = ["COMMAND", "available", "parse_netstat", "tcp_sockets_from_netstat"]

COMMAND = ("netstat", "-anv", "-p", "tcp")

#: BSD's state names (tcpstates[] in netinet/tcp_fsm.h), as netstat prints them.
_BSD_STATES = {
    "CLOSED": TcpState.CLOSED,
    "LISTEN": TcpState.LISTEN,
    "SYN_SENT": TcpState.SYN_SENT,
    "SYN_RCVD": TcpState.SYN_RECEIVED,
    "ESTABLISHED": TcpState.ESTABLISHED,
    "CLOSE_WAIT": TcpState.CLOSE_WAIT,
    "FIN_WAIT_1": TcpState.FIN_WAIT_1,
    "CLOSING": TcpState.CLOSING,
    "LAST_ACK": TcpState.LAST_ACK,
    "FIN_WAIT_2": TcpState.FIN_WAIT_2,
    "TIME_WAIT": TcpState.TIME_WAIT,
}
#: netstat prints no inode and no holder: a row's inode says only that it is unknown
#: (`lookup` marks the rows this process holds, from psutil's list of its own sockets).
HOLDER_UNKNOWN = -2


def available() -> bool:
    """True on a real Mac with netstat on the PATH (a simulated macOS has Linux's netstat)."""
    import shutil  # here: `states --port` on Linux imports no more than it needs

    return platforms.real() == "darwin" and shutil.which(COMMAND[0]) is not None


def tcp_sockets_from_netstat(port: int | None = None) -> list[TcpSocketRow]:
    """The Mac's TCP sockets whose local or remote port is `port` (all when None)."""
    import subprocess

    done = subprocess.run(
        COMMAND, capture_output=True, text=True, timeout=SHORT_TIMEOUT, check=True
    )
    rows = parse_netstat(done.stdout)
    if port is None:
        return rows
    return [row for row in rows if port in (row.local[1], row.remote[1])]


def parse_netstat(text: str) -> list[TcpSocketRow]:
    """The TCP rows of macOS `netstat -an[v] -p tcp` output, in its order.

    Addresses are `host.port` (`*` for the unspecified address or port); queues are the
    Recv-Q and Send-Q columns; what netstat does not print (timers, uid, the holder) is
    0, -1 or HOLDER_UNKNOWN, never guessed.
    """
    rows = []
    for line in text.splitlines():
        fields = line.split()
        if len(fields) < 6 or not fields[0].startswith("tcp"):
            continue
        proto, receive_q, send_q, local, foreign, state_name = fields[:6]
        state = _BSD_STATES.get(state_name)
        if state is None or not (receive_q.isdigit() and send_q.isdigit()):
            continue
        ipv6 = proto in ("tcp6", "tcp46")
        try:
            ends = _address(local, ipv6), _address(foreign, ipv6)
        except ValueError:  # an address netstat cut short without its port
            continue
        rows.append(
            TcpSocketRow(
                *ends,
                state,
                tx_queue=int(send_q),
                rx_queue=int(receive_q),
                timer="none",
                timer_seconds=0.0,
                retransmits=0,
                uid=-1,
                inode=HOLDER_UNKNOWN,
            )
        )
    return rows


def _address(text: str, ipv6: bool) -> tuple[str, int]:
    """('127.0.0.1', 8080) from '127.0.0.1.8080'; '*' is the unspecified address or port."""
    host, _, port = text.rpartition(".")
    if not host:
        raise ValueError(f"no port in {text!r}")
    if host == "*":
        host = "::" if ipv6 else "0.0.0.0"
    return host, 0 if port == "*" else int(port)
