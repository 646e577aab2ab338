"""The doctor: what this machine can show, one line per capability, and what is shown instead.

Each check is a real attempt (open the file, call getsockopt, bind ::1), never a guess
from the platform's name. `python -m handshake_lab doctor` prints it; the course opens with it.
"""

from __future__ import annotations

import dataclasses
import html
import os
import platform
import socket
import subprocess

from . import platforms
from .kernel import defer_accept
from .kernel.psutil_states import lists_this_process_only
from .kernel.sysctls import kernel_settings, syn_retry_schedule


@dataclasses.dataclass(frozen=True)
class Capability:
    """One line of the doctor's report."""

    name: str
    available: bool
    detail: str
    instead: str = ""
    #: The evidence tier's name ("live", "namespace", "saved-syn", "shipped") on that line.
    tier: str = ""

    def line(self) -> str:
        mark = "yes" if self.available else "no "
        text = f"[{mark}] {self.name}: {self.detail}"
        if not self.available and self.instead:
            text += f" -> instead: {self.instead}"
        return text


def _proc_net_tcp() -> Capability:
    try:
        with open("/proc/net/tcp", encoding="ascii") as file:
            file.readline()
    except OSError as error:
        return Capability(
            "/proc/net/tcp",
            False,
            f"cannot be read ({error.strerror})",
            "states of your own sockets through psutil where it can; "
            "not-yet-accepted connections are not shown",
        )
    return Capability(
        "/proc/net/tcp",
        True,
        "readable without privileges: the kernel's "
        "TCP table, including connections nobody has accepted yet",
    )


def _psutil() -> Capability:
    from .kernel.psutil_states import PlatformCannotShow, tcp_sockets_from_psutil

    try:
        tcp_sockets_from_psutil()
    except PlatformCannotShow as error:
        return Capability("psutil", False, str(error))
    whose = "this process's" if lists_this_process_only() else "the system's"
    return Capability("psutil", True, f"lists {whose} TCP sockets with their states")


def _netstat() -> Capability:
    """macOS: its netstat lists every TCP socket to any user (kernel/netstat_states)."""
    from .kernel.netstat_states import available, tcp_sockets_from_netstat

    instead = "psutil's list of this process's own sockets"
    if not available():
        return Capability("netstat", False, "macOS's netstat is not on this machine", instead)
    try:
        tcp_sockets_from_netstat()
    except (OSError, subprocess.SubprocessError) as error:
        return Capability("netstat", False, f"netstat -anv failed ({error})", instead)
    return Capability(
        "netstat",
        True,
        "lists every TCP socket with its state to any user, including connections nobody "
        "has accepted yet",
    )


def _tcp_info() -> Capability:
    from .kernel.tcp_info import has_tcp_info, read_state

    if not has_tcp_info():
        return Capability(
            "TCP_INFO",
            False,
            f"not available on {platforms.name()}",
            "states from psutil, no accept-queue length",
        )
    with socket.socket() as probe:
        state = read_state(probe)
    return Capability("TCP_INFO", True, f"getsockopt works (a fresh socket reads {state})")


def _sock_diag() -> Capability:
    from .kernel.sock_diag import SockDiag

    if SockDiag.available():
        return Capability(
            "sock_diag",
            True,
            "exact state lookups by address (what `ss` "
            "uses): the recorder's cost does not grow with other sockets",
        )
    return Capability(
        "sock_diag",
        False,
        "netlink sock_diag is not allowed here",
        "the recorder reads /proc/net/tcp, slower on a busy machine",
    )


def _defer_accept(syncookies: int | None) -> Capability:
    if not defer_accept.available():
        return Capability(
            "TCP_DEFER_ACCEPT",
            False,
            f"not available on {platforms.name()}",
            "notebook 04 explains SYN-RECEIVED without showing it",
        )
    cookies = f"tcp_syncookies={syncookies}"
    if syncookies == 2:
        return Capability(
            "TCP_DEFER_ACCEPT",
            False,
            f"{cookies}: every SYN is answered with a "
            "cookie, so the kernel keeps no SYN-RECEIVED state to defer",
            "notebook 04 shows the accept queue and says why it cannot show this",
        )
    return Capability(
        "TCP_DEFER_ACCEPT",
        True,
        f"works ({cookies}): a connection can be held in SYN-RECEIVED until the client sends",
    )


def _syn_retries() -> Capability:
    # The host's schedule from the kernel's own rule (model/syn_retries.py): every
    # retransmission time and when connect() gives up, not just the sysctl's number.
    try:
        schedule = syn_retry_schedule()
    except (NotImplementedError, OSError) as error:
        return Capability(
            "SYN retries",
            False,
            str(error),
            "the retry notebook cell is skipped with a sentence saying why",
        )
    return Capability("SYN retries", True, schedule.describe())


def _ipv6_loopback() -> Capability:
    if not socket.has_ipv6:
        return Capability(
            "IPv6 loopback",
            False,
            "Python was built without IPv6",
            "every experiment runs on 127.0.0.1",
        )
    try:
        with socket.socket(socket.AF_INET6) as probe:
            probe.bind(("::1", 0))
    except OSError as error:
        return Capability(
            "IPv6 loopback",
            False,
            f"::1 cannot be bound ({error.strerror})",
            "every experiment runs on 127.0.0.1",
        )
    return Capability("IPv6 loopback", True, "::1 works")


def _evidence_tiers() -> list[Capability]:
    """Packets (every segment), the saved SYN and counters, and the tier this machine gets."""
    try:
        from .capture.evidence import Tier
        from .capture.saved_syn_tier import saved_syn_unavailable
        from .capture.tiers import best_tier
    except ImportError as error:  # pragma: no cover - the package always ships capture
        return [Capability("packet capture", False, str(error), "kernel states only")]
    every = best_tier(every_segment=True)
    packets = every.tier in (Tier.LIVE, Tier.NAMESPACE)
    why_not = saved_syn_unavailable()
    saved = Capability(
        "saved SYN and counters",
        why_not is None,
        why_not
        or "works without privileges: the server's kernel keeps the client's SYN "
        "(TCP_SAVED_SYN) and each socket counts the segments it sent and received (TCP_INFO)",
        "the SYN comes from a capture: live, namespace or the one shipped with the lab",
    )
    chosen = every if packets else best_tier()
    return [
        Capability(
            "packet capture",
            packets,
            f"{every.tier.value}: {every.explanation}",
            "the capture shipped with the lab, labelled with its date and kernel",
        ),
        saved,
        Capability(
            "evidence tier",
            chosen.tier is not Tier.SHIPPED,
            f"this machine gets {chosen.tier.value}: {chosen.explanation}",
            "the capture shipped with the lab",
            tier=chosen.tier.value,
        ),
        _lost_segments(),
    ]


def _lost_segments() -> Capability:
    """Whether a lost SYN, SYN+ACK or ACK can be made here (socket filters and capture)."""
    from .capture.evidence import Tier
    from .capture.lost_segments_evidence import loss_tier

    tier, sentence = loss_tier()
    return Capability(
        "lost segments",
        tier is not Tier.SHIPPED,
        sentence.removeprefix("Lost segments: "),
        "the lab's recordings of each loss, labelled with their date and kernel",
    )


_PACKETS = {
    "live": "every segment, captured live on the loopback interface.",
    "namespace": "every segment, captured live in a private network namespace of the lab's own.",
    "saved-syn": (
        "your own SYN as the server's kernel received it and each socket's segment counts; "
        "the whole exchange comes from a capture recorded with the lab's own tool."
    ),
    "shipped": "a capture recorded with the lab's own tool, labelled with its date and kernel.",
}


def what_this_machine_shows(report: list[Capability]) -> str:
    """What a learner will see on this machine, in a few plain lines (details: the report)."""
    found = {capability.name: capability for capability in report}

    def works(name: str) -> bool:
        return name in found and found[name].available

    if works("/proc/net/tcp") or works("sock_diag"):
        states = "every socket's TCP state, read from the kernel, even before accept()."
    elif works("netstat"):
        states = "every socket's TCP state, as netstat lists it, even before accept()."
    elif works("psutil") and not lists_this_process_only():
        states = "the TCP states psutil lists for the whole system."
    else:
        states = "the states of your own sockets only; connections not yet accepted are not seen."
    tier = found["evidence tier"].tier if "evidence tier" in found else "shipped"
    lines = [f"Socket states: {states}", f"Packets: {_PACKETS[tier]}"]
    if "lost segments" in found:
        lost = "made live here." if works("lost segments") else "shown from the lab's recordings."
        lines.append(f"Lost segments (notebook 08): {lost}")
    defer = "works here." if works("TCP_DEFER_ACCEPT") else "not shown here (the details say why)."
    lines.append(f"TCP_DEFER_ACCEPT (notebook 04): {defer}")
    return "\n".join(lines)


class FoldedDetails:
    """The doctor's lines, folded: a notebook shows a summary line to click open (an HTML
    <details>, which stays folded when the cell runs again); plain text shows every line."""

    def __init__(self, report: list[Capability]) -> None:
        self.lines = [capability.line() for capability in report]

    def __repr__(self) -> str:
        return "\n".join(self.lines)

    def _repr_html_(self) -> str:
        body = html.escape("\n".join(self.lines))
        return (
            "<details><summary>The details: one line per capability, with what you get "
            f"instead where one is missing (click to unfold)</summary><pre>{body}</pre></details>"
        )


def doctor() -> list[Capability]:
    """Check every capability the course uses, on this machine, now."""
    settings = kernel_settings()
    uname = platform.uname()
    identity = f"{uname.system} {uname.release} {uname.machine}, Python {platform.python_version()}"
    if hasattr(os, "geteuid"):
        identity += ", root" if os.geteuid() == 0 else f", unprivileged (uid {os.geteuid()})"
    if platforms.simulated():
        identity += f"; {platforms.SWITCH} makes the lab behave as on {platforms.name(plain=True)}"
    is_linux = platforms.is_linux()
    report = [
        Capability(
            "platform",
            is_linux,
            identity,
            "kernel states through netstat (macOS) or psutil; the Linux-only experiments are "
            "skipped, each with a sentence saying why",
        )
    ]
    if is_linux:
        report += [_proc_net_tcp(), _tcp_info(), _sock_diag()]
    else:
        mac = [_netstat()] if platforms.current() == "darwin" else []
        report += [*mac, _psutil(), _tcp_info()]
    report += [_defer_accept(settings.syncookies), _syn_retries(), _ipv6_loopback()]
    if is_linux:
        report += _evidence_tiers()
    return report
