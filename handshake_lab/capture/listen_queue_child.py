"""The child process that runs the listen-queue experiments in a private network namespace.

Run as ``python -m handshake_lab.capture.listen_queue_child``; it prints one line of JSON on
stdout: {"ok": true, "kernel": release, "syn_queue": [...], "ack_overflow": [...]} or
{"ok": false, "stage": "namespace" or "experiment", "error": ...}. It must be a fresh
process (unshare fails in a multi-threaded one, see ``namespace_child``). Inside, it is root of
its own user and network namespace, so it may set that namespace's own tcp_syncookies and
tcp_abort_on_overflow (each network namespace has its own) and capture on its private
loopback; the machine's settings are never touched.
"""

from __future__ import annotations

import os
import sys

from .child_process import report_from_private_network
from .listen_queue import run_ack_overflow_experiment, run_syn_queue_experiment

#: The settings each experiment runs with, in this order.
SYNCOOKIES_SETTINGS = (1, 0)
ABORT_ON_OVERFLOW_SETTINGS = (0, 1)


def _set_sysctl(name: str, value: int) -> None:
    """Write one of this (private) network namespace's net.ipv4 settings."""
    with open(f"/proc/sys/net/ipv4/{name}", "w", encoding="ascii") as file:
        file.write(str(value))


def run_all() -> dict:
    """Every experiment under every setting; call only inside a private network namespace."""
    syn_queue = []
    for syncookies in SYNCOOKIES_SETTINGS:
        _set_sysctl("tcp_syncookies", syncookies)
        syn_queue.append(run_syn_queue_experiment().to_dict())
    _set_sysctl("tcp_syncookies", 1)
    ack_overflow = []
    for abort in ABORT_ON_OVERFLOW_SETTINGS:
        _set_sysctl("tcp_abort_on_overflow", abort)
        ack_overflow.append(run_ack_overflow_experiment().to_dict())
    return {"kernel": os.uname().release, "syn_queue": syn_queue, "ack_overflow": ack_overflow}


def main() -> int:
    # Exception, not only OSError: whatever fails is handed to the parent, which says what.
    return report_from_private_network(run_all, errors=(Exception,))


if __name__ == "__main__":
    sys.exit(main())
