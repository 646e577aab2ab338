"""Read the kernel's TCP table from /proc/net/tcp and /proc/net/tcp6, without privileges.

`parse_tcp_table` is pure: text in, rows out, so it is tested on fixture text. The reader,
`read_tcp_table`, is thin: each file is read in one read() for a consistent snapshot, and rows
are filtered by port before they are decoded, because after a load test the file holds tens
of thousands of TIME_WAIT rows. The hex state codes are Linux's (see states.py). Linux only:
this module never looks elsewhere; `lookup` chooses psutil on other platforms.

Addresses are printed by the kernel as 32-bit words in host byte order; tcp6 has four.
For a LISTEN row, rx_queue is the current accept-queue length. A connection the kernel has
finished but no process has accepted yet has inode 0. The "tr:tm->when" column is the running
timer and, in clock ticks (USER_HZ), how long until it fires: a TIME_WAIT row's shows how much
of TIME_WAIT is left. `format_rows` (pure) prints one server's and one client's rows as a table.
"""

from __future__ import annotations

import dataclasses
import os
import socket
import struct
import sys
from collections.abc import Iterable

from ..model.addresses import Address
from ..model.states import TcpState

#: USER_HZ: the clock ticks per second in which /proc prints times (100 on most systems).
CLOCK_TICKS_PER_SECOND = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100

#: The "tr" column: which timer is running (net/ipv4/tcp_ipv4.c, get_tcp4_sock).
TIMER_NAMES = {
    0: "none",
    1: "retransmit",
    2: "keepalive",
    3: "time_wait",
    4: "zero_window_probe",
}


class ProcNetParseError(ValueError):
    """A line of /proc/net/tcp that does not have the kernel's layout."""


@dataclasses.dataclass(frozen=True)
class TcpSocketRow:
    """One row of the kernel's TCP table."""

    local: Address
    remote: Address
    state: TcpState
    tx_queue: int
    rx_queue: int
    timer: str
    #: Seconds until `timer` fires (0.0 when no timer runs).
    timer_seconds: float
    retransmits: int
    uid: int
    #: 0 when no process holds the socket (not accepted yet, or closed); from psutil, which
    #: gives no inode, -1 for a socket held by a process.
    inode: int

    @property
    def accept_queue_length(self) -> int | None:
        """For a LISTEN row, connections finished but not yet accepted; else None."""
        return self.rx_queue if self.state is TcpState.LISTEN else None

    @property
    def accepted(self) -> bool:
        """False for a connection no process holds yet (inode 0: in the accept queue)."""
        return self.inode != 0

    def to_dict(self) -> dict:
        row = dataclasses.asdict(self)
        row["state"] = self.state.linux_name
        row["accept_queue_length"] = self.accept_queue_length
        return row


def _decode_address(hex_address: str, byteorder: str) -> str:
    words = [int(hex_address[i : i + 8], 16) for i in range(0, len(hex_address), 8)]
    packed = struct.pack(("<" if byteorder == "little" else ">") + "I" * len(words), *words)
    family = socket.AF_INET if len(packed) == 4 else socket.AF_INET6
    return socket.inet_ntop(family, packed)


def _decode_endpoint(field: str, byteorder: str) -> Address:
    hex_address, hex_port = field.split(":")
    if len(hex_address) not in (8, 32):
        raise ValueError(f"address {hex_address!r} is neither 8 nor 32 hex digits")
    return _decode_address(hex_address, byteorder), int(hex_port, 16)


def _port_hex(port: int) -> str:
    return f":{port:04X}"


def parse_tcp_table(
    text: str,
    *,
    source: str = "/proc/net/tcp",
    port: int | None = None,
    byteorder: str = sys.byteorder,
    ticks_per_second: int = CLOCK_TICKS_PER_SECOND,
) -> list[TcpSocketRow]:
    """Decode the text of /proc/net/tcp or tcp6; keep rows whose local or remote port is `port`.

    `byteorder` is the byte order of the machine that wrote the text (the kernel prints
    addresses in host order) and `ticks_per_second` its USER_HZ (timers are in ticks).
    A malformed line raises ProcNetParseError naming the line.
    """
    if not isinstance(text, str):
        hint = " (decode bytes first: data.decode('ascii'))" if isinstance(text, bytes) else ""
        raise TypeError(
            f"parse_tcp_table needs the file's text, a str, got {type(text).__name__}{hint}"
        )
    wanted = _port_hex(port) if port is not None else None
    rows = []
    for number, line in enumerate(text.splitlines(), start=1):
        if number == 1 or not line.strip():
            continue  # the header
        fields = line.split()
        if (
            wanted is not None
            and len(fields) > 2
            and not (fields[1].endswith(wanted) or fields[2].endswith(wanted))
        ):
            continue
        try:
            row = _parse_row(fields, byteorder, ticks_per_second)
        except (ValueError, IndexError, struct.error) as error:
            raise ProcNetParseError(
                f"{source} line {number} is not in the kernel's layout ({error}): {line.strip()!r}"
            ) from None
        if port is None or port in (row.local[1], row.remote[1]):
            rows.append(row)
    return rows


def _parse_row(fields: list[str], byteorder: str, ticks_per_second: int) -> TcpSocketRow:
    if len(fields) < 10 or not fields[0].endswith(":"):
        raise ValueError(f"expected at least 10 fields after 'sl:', got {len(fields)}")
    tx_queue, rx_queue = (int(part, 16) for part in fields[4].split(":"))
    timer_code, timer_ticks = (int(part, 16) for part in fields[5].split(":"))
    return TcpSocketRow(
        local=_decode_endpoint(fields[1], byteorder),
        remote=_decode_endpoint(fields[2], byteorder),
        state=TcpState.from_code(int(fields[3], 16)),
        tx_queue=tx_queue,
        rx_queue=rx_queue,
        timer=TIMER_NAMES.get(timer_code, f"timer {timer_code}"),
        timer_seconds=timer_ticks / ticks_per_second,
        retransmits=int(fields[6], 16),
        uid=int(fields[7]),
        inode=int(fields[9]),
    )


def read_tcp_table(port: int | None = None, *, proc_root: str = "/proc") -> list[TcpSocketRow]:
    """The rows of tcp and tcp6 under `proc_root` (each file read in one read)."""
    rows: list[TcpSocketRow] = []
    for name in ("tcp", "tcp6"):
        path = os.path.join(proc_root, "net", name)
        try:
            with open(path, encoding="ascii") as file:
                text = file.read()
        except FileNotFoundError:
            if name == "tcp6":
                continue  # a kernel without IPv6
            raise
        rows.extend(parse_tcp_table(text, source=path, port=port))
    return rows


def find_rows(rows: Iterable[TcpSocketRow], local: Address, remote: Address):
    """The rows with exactly this local and remote endpoint."""
    return [row for row in rows if row.local == local and row.remote == remote]


def format_rows(rows: Iterable[TcpSocketRow], server_address, client_address) -> str:
    """One server's listener, a client and the server's side of their connection, as a table.

    Rows of other connections are left out; the order is fixed: listener, client, server side.
    """
    server_address, client_address = tuple(server_address[:2]), tuple(client_address[:2])
    roles = []
    for row in rows:
        if row.local == server_address and row.state is TcpState.LISTEN:
            roles.append((0, "listener", row))
        elif row.local == client_address and row.remote == server_address:
            roles.append((1, "client", row))
        elif row.local == server_address and row.remote == client_address:
            roles.append((2, "server side", row))
    lines = [
        f"{'socket':<12} {'local':<22} {'remote':<22} {'state (Linux)':<14} "
        f"{'RFC 9293 name':<14} accepted"
    ]
    for _, role, row in sorted(roles, key=lambda item: item[0]):
        local, remote = (f"{host}:{port}" for host, port in (row.local, row.remote))
        accepted = "-" if role != "server side" else ("yes" if row.accepted else "no")
        lines.append(
            f"{role:<12} {local:<22} {remote:<22} {row.state.linux_name:<14} "
            f"{row.state.rfc_name:<14} {accepted}"
        )
    return "\n".join(lines)
