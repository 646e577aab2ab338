"""A listener's accept queue as `ss -ltn` prints it, next to the course's own readings.

For a LISTEN socket, `ss` shows Recv-Q = the accept queue's length (sk_ack_backlog) and Send-Q
= its limit (sk_max_ack_backlog): inet_diag fills idiag_rqueue and idiag_wqueue so for
listeners (tcp_diag_get_info, net/ipv4/tcp_diag.c). The course reads the same two numbers from
TCP_INFO (tcpi_unacked, tcpi_sacked) and the length from /proc/net/tcp's rx_queue.
`parse_ss_listener` is pure; `listener_queue_view` runs `ss` when it is installed (iproute2;
many containers lack it) and says so when it is not. Linux only.
"""

from __future__ import annotations

import dataclasses
import shutil
import socket
import subprocess

from ..timeouts import SHORT_TIMEOUT
from .proc_tcp import read_tcp_table
from .tcp_info import accept_queue

__all__ = ["ListenerQueueView", "listener_queue_view", "parse_ss_listener"]


@dataclasses.dataclass(frozen=True)
class ListenerQueueView:
    """One listener's accept queue, three ways; the ss fields are None where ss is missing."""

    ss_output: str | None  # what `ss -ltn` printed for this listener, header included
    ss_recv_q: int | None
    ss_send_q: int | None
    tcp_info_length: int
    tcp_info_maximum: int
    proc_rx_queue: int


def parse_ss_listener(text: str, port: int) -> tuple[int, int] | None:
    """(Recv-Q, Send-Q) of the LISTEN line for local `port` in `ss -ltn` output, or None."""
    for line in text.splitlines():
        fields = line.split()
        if len(fields) >= 4 and fields[0] == "LISTEN" and fields[3].endswith(f":{port}"):
            return int(fields[1]), int(fields[2])
    return None


def listener_queue_view(listener: socket.socket) -> ListenerQueueView:
    """Read `listener`'s accept queue with ss (if installed), TCP_INFO and /proc/net/tcp."""
    queue = accept_queue(listener)
    port = listener.getsockname()[1]
    rows = [row for row in read_tcp_table(port) if row.accept_queue_length is not None]
    if len(rows) != 1:
        raise RuntimeError(f"expected one LISTEN row for port {port} in /proc/net/tcp: {rows}")
    ss_output, numbers = None, None
    if shutil.which("ss") is not None:
        completed = subprocess.run(
            ["ss", "-ltn", f"sport = :{port}"],
            capture_output=True,
            text=True,
            timeout=SHORT_TIMEOUT,
            check=True,
        )
        ss_output = completed.stdout.rstrip()
        numbers = parse_ss_listener(ss_output, port)
    return ListenerQueueView(
        ss_output=ss_output,
        ss_recv_q=numbers[0] if numbers else None,
        ss_send_q=numbers[1] if numbers else None,
        tcp_info_length=queue.length,
        tcp_info_maximum=queue.maximum,
        proc_rx_queue=rows[0].rx_queue,
    )
