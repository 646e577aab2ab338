"""The command-line tools a learner will use later (ss, tcpdump), run next to the lab's own view.

`run_tool` runs one only where it is installed (``shutil.which``) and otherwise returns one
sentence saying so and how to get it; `ss_next_to_lab` puts ``ss``'s line for one connection
beside the row the lab reads from /proc/net/tcp; `save_pcap` writes a capture as a pcap file
(tcpdump and Wireshark open it) and `tcpdump_read` shows it with ``tcpdump -r``.
Rules: never raise because a tool is missing or fails, say it; every run has a timeout;
loopback addresses only, as everywhere in the lab.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from ..capture.evidence import Capture
from ..kernel.lookup import tcp_sockets
from ..kernel.proc_tcp import find_rows
from ..model.addresses import Address
from ..model.pcap import write_pcap
from ..timeouts import SHORT_TIMEOUT

__all__ = ["PCAP_NAME", "run_tool", "save_pcap", "ss_next_to_lab", "tcpdump_read"]

PCAP_NAME = "handshake-05.pcap"

_HOW_TO_GET = {
    "ss": "it comes with iproute2 (Debian/Ubuntu: apt-get install iproute2)",
    "tcpdump": (
        "install it with apt-get install tcpdump (Debian/Ubuntu) or brew install tcpdump "
        "(macOS), or open the file in Wireshark"
    ),
}


def run_tool(argv: list[str], *, timeout: float = SHORT_TIMEOUT) -> str:
    """The tool's output, or one sentence saying it is not installed (or why it failed)."""
    if not argv or not all(isinstance(part, str) for part in argv):
        raise ValueError("run_tool takes the command as a list of strings, e.g. ['ss', '-tan']")
    name = argv[0]
    if shutil.which(name) is None:
        how = _HOW_TO_GET.get(name, "install it with your system's package manager")
        return f"{name} is not installed on this machine: {how}."
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return f"{' '.join(argv)} did not finish within {timeout} s."
    if done.returncode != 0:
        return f"{' '.join(argv)} failed (exit status {done.returncode}): {done.stderr.strip()}"
    return done.stdout.rstrip()


def ss_next_to_lab(local: Address, remote: Address) -> str:
    """The lab's /proc/net/tcp row of one connection and ``ss -tano``'s line for it, together."""
    local, remote = tuple(local[:2]), tuple(remote[:2])
    rows = find_rows(tcp_sockets(local[1]), local, remote)
    if rows:
        row = rows[0]
        lab = (
            f"{row.local[0]}:{row.local[1]} -> {row.remote[0]}:{row.remote[1]}  "
            f"{row.state.linux_name}  timer {row.timer} {row.timer_seconds:.1f} s"
        )
    else:
        lab = "no such connection (a TIME_WAIT lasts 60 s: run the experiment again)"
    command = ["ss", "-tano", f"( sport = :{local[1]} and dport = :{remote[1]} )"]
    return f"the lab's row (/proc/net/tcp):\n  {lab}\nss -tano '{command[2]}':\n  " + run_tool(
        command
    ).replace("\n", "\n  ")


def save_pcap(capture: Capture, directory: str | os.PathLike | None = None) -> Path:
    """Write the capture's segments as a pcap file; the working directory if it is writable.

    Elsewhere (a read-only checkout) the file goes to the system's temporary directory.
    """
    if not isinstance(capture, Capture) or not capture.segments:
        raise ValueError("save_pcap needs a capture with segments, e.g. capture_handshake()")
    if directory is None:  # a name relative to the notebook, where the learner finds it
        directory = "" if os.access(Path.cwd(), os.W_OK) else tempfile.gettempdir()
    path = Path(directory) / PCAP_NAME
    write_pcap(capture.segments, path)
    return path


def tcpdump_read(path: str | os.PathLike) -> str:
    """``tcpdump -n -S -r path``: numeric addresses, absolute sequence numbers as on the wire."""
    if not Path(path).is_file():
        raise FileNotFoundError(f"{path} does not exist: write it first with save_pcap(capture)")
    return run_tool(["tcpdump", "-n", "-S", "-r", str(path)])
