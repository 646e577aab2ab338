"""The TCP states: the names RFC 9293 gives them and the codes and names Linux uses.

The numeric codes mirror the kernel's enum in include/net/tcp_states.h (TCP_ESTABLISHED = 1
... TCP_CLOSING = 11); /proc/net/tcp prints them in hex and TCP_INFO's tcpi_state carries
them as a byte. CLOSED (7) is what Linux calls TCP_CLOSE. Pure data, no I/O.
"""

from __future__ import annotations

import enum


class TcpState(enum.Enum):
    """A TCP connection state. ``value`` is the Linux code."""

    ESTABLISHED = 1
    SYN_SENT = 2
    SYN_RECEIVED = 3
    FIN_WAIT_1 = 4
    FIN_WAIT_2 = 5
    TIME_WAIT = 6
    CLOSED = 7
    CLOSE_WAIT = 8
    LAST_ACK = 9
    LISTEN = 10
    CLOSING = 11

    @property
    def code(self) -> int:
        """The Linux state code (the hex digits in /proc/net/tcp, tcpi_state in TCP_INFO)."""
        return self.value

    @property
    def rfc_name(self) -> str:
        """The name RFC 9293 uses, e.g. ``SYN-RECEIVED``."""
        return _RFC_NAMES[self]

    @property
    def linux_name(self) -> str:
        """The name Linux tools (ss, /proc, netstat) print, e.g. ``SYN_RECV``."""
        return _LINUX_NAMES[self]

    @property
    def display_name(self) -> str:
        """RFC 9293's name, then Linux's where it is spelt differently.

        ``SYN-RECEIVED (SYN_RECV)``, ``CLOSE-WAIT (CLOSE_WAIT)``, ``LISTEN``: the one form every
        explanation, legend and table uses, so a learner can match either name.
        """
        if self.rfc_name == self.linux_name:
            return self.rfc_name
        return f"{self.rfc_name} ({self.linux_name})"

    @classmethod
    def from_code(cls, code: int) -> TcpState:
        """The state for a Linux code; a ValueError names codes that are not TCP states."""
        try:
            return cls(code)
        except ValueError:
            raise ValueError(
                f"{code!r} is not a Linux TCP state code (expected 1..11, see tcp_states.h)"
            ) from None

    @classmethod
    def from_name(cls, name: str) -> TcpState:
        """Accept any of the spellings a learner meets: RFC, Linux or this enum's own."""
        key = name.strip().upper().replace("-", "_")
        for state in cls:
            if key in (state.name, state.linux_name, state.rfc_name.replace("-", "_")):
                return state
        raise ValueError(f"{name!r} is not a TCP state; try one of {', '.join(cls.__members__)}")

    def __str__(self) -> str:
        return self.rfc_name


_RFC_NAMES = {
    TcpState.ESTABLISHED: "ESTABLISHED",
    TcpState.SYN_SENT: "SYN-SENT",
    TcpState.SYN_RECEIVED: "SYN-RECEIVED",
    TcpState.FIN_WAIT_1: "FIN-WAIT-1",
    TcpState.FIN_WAIT_2: "FIN-WAIT-2",
    TcpState.TIME_WAIT: "TIME-WAIT",
    TcpState.CLOSED: "CLOSED",
    TcpState.CLOSE_WAIT: "CLOSE-WAIT",
    TcpState.LAST_ACK: "LAST-ACK",
    TcpState.LISTEN: "LISTEN",
    TcpState.CLOSING: "CLOSING",
}

_LINUX_NAMES = {
    TcpState.ESTABLISHED: "ESTABLISHED",
    TcpState.SYN_SENT: "SYN_SENT",
    TcpState.SYN_RECEIVED: "SYN_RECV",
    TcpState.FIN_WAIT_1: "FIN_WAIT1",
    TcpState.FIN_WAIT_2: "FIN_WAIT2",
    TcpState.TIME_WAIT: "TIME_WAIT",
    TcpState.CLOSED: "CLOSE",
    TcpState.CLOSE_WAIT: "CLOSE_WAIT",
    TcpState.LAST_ACK: "LAST_ACK",
    TcpState.LISTEN: "LISTEN",
    TcpState.CLOSING: "CLOSING",
}
