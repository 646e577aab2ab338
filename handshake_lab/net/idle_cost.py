"""What open, idle connections cost a server: its threads and its memory, measured.

`measure_idle_connections(server_class, connections=100)` starts the server, opens that many
client connections and makes one echo on each (so every one of them is being served), then
reads this process's thread count and memory and compares them with the moment before the
server started. Rules:

- Memory comes from /proc/self/status: VmRSS, the memory in use, and VmSize, the address
  space reserved (a thread reserves its whole stack there at once and touches a little of
  it). Off Linux the memory figures are None; the thread count is measured everywhere.
- The clients live in this process too, so the figures include them; they are the same for
  both servers, so the difference between two servers is the servers' own cost.
- Everything is closed when it returns, even when a connection fails. A client that gets no
  answer because the server failed (a host that caps memory may refuse it another thread:
  "can't start new thread") is a RuntimeError naming the server's error.
"""

from __future__ import annotations

import contextlib
import dataclasses
import threading

try:
    import resource
except ImportError:  # Windows
    resource = None

from ..timeouts import LOOPBACK_TIMEOUT
from .clients import close, connect, receive, send

_STATUS = "/proc/self/status"


@dataclasses.dataclass(frozen=True)
class IdleCost:
    """A server's threads and memory while `connections` idle connections were open."""

    server: str
    connections: int
    threads_added: int
    #: Bytes of memory in use (VmRSS) and of address space reserved (VmSize) added; None off Linux.
    memory_added: int | None
    address_space_added: int | None

    def per_connection(self, total: int | None) -> float | None:
        return None if total is None else total / self.connections

    def __str__(self) -> str:
        text = f"{self.server}: {self.connections} idle connections, "
        text += f"{self.threads_added:+d} threads"
        if self.memory_added is not None and self.address_space_added is not None:
            in_use = self.per_connection(self.memory_added) / 1024
            reserved = self.per_connection(self.address_space_added) / 1024
            text += (
                f", per connection {in_use:,.0f} KiB of memory in use and "
                f"{reserved:,.0f} KiB of address space reserved"
            )
        return text


def default_thread_stack() -> int | None:
    """Bytes of stack a new thread reserves by default here, or None where it cannot be read:
    Python's own setting (threading.stack_size) if set, else the soft RLIMIT_STACK that glibc
    uses for new threads (`ulimit -s`)."""
    if threading.stack_size():
        return threading.stack_size()
    if resource is None:
        return None
    soft, _hard = resource.getrlimit(resource.RLIMIT_STACK)
    return None if soft == resource.RLIM_INFINITY else soft


def _memory() -> tuple[int, int] | None:
    """(VmRSS, VmSize) of this process in bytes, or None where /proc/self/status is missing."""
    try:
        with open(_STATUS, encoding="ascii") as status:
            fields = dict(line.split(":", 1) for line in status if ":" in line)
    except OSError:
        return None
    return int(fields["VmRSS"].split()[0]) * 1024, int(fields["VmSize"].split()[0]) * 1024


def measure_idle_connections(server_class, connections: int = 100) -> IdleCost:
    """Hold `connections` idle connections open to a new `server_class()`; see the module."""
    if isinstance(connections, bool) or not isinstance(connections, int):
        raise ValueError(f"connections is a whole number, got {connections!r}")
    if not 1 <= connections <= 500:
        raise ValueError(f"use 1 to 500 connections (each may cost a thread), got {connections}")
    threads_before, memory_before = threading.active_count(), _memory()
    with server_class() as server, contextlib.ExitStack() as clients:
        for count in range(1, connections + 1):
            try:
                client = connect(server.address, timeout=LOOPBACK_TIMEOUT)
                clients.callback(close, client, reset=True)  # RST: no TIME-WAIT left behind
                send(client, b"x")
                receive(client)  # answered: the server is serving this connection now
            except OSError:
                if not server.errors:
                    raise
                error = server.errors[0]  # the cause: say it, not that a client timed out
                raise RuntimeError(
                    f"{server_class.__name__} stopped at connection {count} of {connections}: "
                    f"{type(error).__name__}: {error}; try fewer connections"
                ) from error
        threads_added = threading.active_count() - threads_before
        memory_after = _memory()
    if memory_before is None or memory_after is None:
        in_use = reserved = None
    else:
        in_use, reserved = (
            after - before for after, before in zip(memory_after, memory_before, strict=True)
        )
    return IdleCost(server_class.__name__, connections, threads_added, in_use, reserved)
