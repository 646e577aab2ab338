"""The host's TCP settings that change what the course shows, read from /proc/sys.

The numbers differ between kernels and machines (the SYN retry schedule changed in Linux
6.x with tcp_syn_linear_timeouts), so the course reads them and never hard-codes them.
`describe_syn_retries` is pure: settings in, a sentence out.
"""

from __future__ import annotations

import dataclasses
import os

_SYSCTL_ROOT = "/proc/sys/net"

_NAMES = {
    "syncookies": "ipv4/tcp_syncookies",
    "syn_retries": "ipv4/tcp_syn_retries",
    "synack_retries": "ipv4/tcp_synack_retries",
    "syn_linear_timeouts": "ipv4/tcp_syn_linear_timeouts",
    "fin_timeout": "ipv4/tcp_fin_timeout",
    "somaxconn": "core/somaxconn",
    "local_port_range": "ipv4/ip_local_port_range",
}


@dataclasses.dataclass(frozen=True)
class KernelSettings:
    """The sysctls the course depends on; None where this kernel has no such setting."""

    syncookies: int | None
    syn_retries: int | None
    synack_retries: int | None
    syn_linear_timeouts: int | None
    fin_timeout: int | None
    somaxconn: int | None
    local_port_range: tuple[int, int] | None


def _read(root: str, name: str) -> str | None:
    try:
        with open(os.path.join(root, name), encoding="ascii") as file:
            return file.read().strip()
    except OSError:
        return None


def kernel_settings(sysctl_root: str = _SYSCTL_ROOT) -> KernelSettings:
    """Read the settings (each None where the file is missing, as on macOS)."""
    values: dict = {}
    for field, name in _NAMES.items():
        text = _read(sysctl_root, name)
        if text is None:
            values[field] = None
        elif field == "local_port_range":
            low, high = text.split()
            values[field] = (int(low), int(high))
        else:
            values[field] = int(text)
    return KernelSettings(**values)


def syn_retry_gaps(linear_timeouts: int | None, count: int, initial_rto: float = 1.0):
    """The expected gaps in seconds between a dropped SYN's first `count` transmissions.

    The first `linear_timeouts` retries wait initial_rto each (Linux 6.x); after that the
    wait doubles each time (classic exponential backoff, RFC 6298). Older kernels have no
    linear phase. The course measures the real gaps and compares them with these.
    """
    gaps = []
    wait = initial_rto
    for retry in range(count):
        if linear_timeouts is not None and retry < linear_timeouts:
            gaps.append(initial_rto)
            continue
        gaps.append(wait)
        wait *= 2
    return gaps


def describe_syn_retries(settings: KernelSettings) -> str:
    """One sentence on how this kernel retries an unanswered SYN."""
    if settings.syn_retries is None:
        return "this system does not publish its SYN retry settings"
    linear = settings.syn_linear_timeouts
    gaps = syn_retry_gaps(linear, 6)
    schedule = ", ".join(f"{sum(gaps[: i + 1]):g}" for i in range(len(gaps)))
    phase = (
        f"the first {linear} retries 1 s apart, then doubling"
        if linear
        else "each wait double the last"
    )
    return (
        f"tcp_syn_retries={settings.syn_retries}"
        + (f", tcp_syn_linear_timeouts={linear}" if linear is not None else "")
        + f": an unanswered SYN is sent again about {schedule} s after the first, "
        f"{phase}"
    )
