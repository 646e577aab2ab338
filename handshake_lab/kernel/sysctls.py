"""The host's TCP settings that change what the course shows, read from /proc/sys.

The numbers differ between kernels and machines (the SYN retry schedule changed in Linux
6.5 with tcp_syn_linear_timeouts), so the course reads them and never hard-codes them.
The SYN retry rule itself lives in model/syn_retries.py (pure); `syn_retry_schedule` feeds it
this host's settings, and `syn_retry_gaps` and `describe_syn_retries` are views of it.
"""

from __future__ import annotations

import dataclasses
import itertools
import os

from .. import platforms
from ..model.syn_retries import MAX_TCP_SYNCNT, SynRetrySchedule, schedule_syn_retries

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
    if sysctl_root == _SYSCTL_ROOT and not platforms.is_linux():
        return KernelSettings(**dict.fromkeys(_NAMES))  # no /proc/sys off Linux
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


def syn_retry_schedule(
    syncnt: int | None = None, sysctl_root: str = _SYSCTL_ROOT
) -> SynRetrySchedule:
    """When this host sends an unanswered SYN again and when connect() gives up (ETIMEDOUT).

    `syncnt` is a socket's TCP_SYNCNT (1 to 127); None means the host's tcp_syn_retries.
    tcp_syn_linear_timeouts is read too (None on kernels before 6.5, which is the same as 0).
    The rule is the kernel's, from net/ipv4/tcp_timer.c: see handshake_lab.model.syn_retries.
    """
    if not platforms.is_linux():
        raise NotImplementedError(
            f"the SYN retry schedule is Linux's, read from /proc/sys; {platforms.name()} has "
            "its own rule and publishes no such settings"
        )
    settings = kernel_settings(sysctl_root)
    if syncnt is None:
        if settings.syn_retries is None:
            raise FileNotFoundError(
                f"cannot read {_NAMES['syn_retries']} under {sysctl_root}: pass syncnt "
                "(the TCP_SYNCNT you set) to get the schedule anyway"
            )
        return schedule_syn_retries(settings.syn_retries, settings.syn_linear_timeouts)
    return schedule_syn_retries(syncnt, settings.syn_linear_timeouts, retries_from="TCP_SYNCNT")


def syn_retry_gaps(linear_timeouts: int | None, count: int, initial_rto: float = 1.0):
    """The gaps in seconds between a dropped SYN's first `count` + 1 transmissions.

    A view of the one rule in model/syn_retries.py: the waits do not depend on how many
    retries are allowed, only on tcp_syn_linear_timeouts, so the schedule is run with the
    largest allowed retry count and its first `count` gaps are returned.
    """
    if isinstance(count, bool) or not isinstance(count, int) or not 0 <= count <= MAX_TCP_SYNCNT:
        raise ValueError(f"count must be a whole number from 0 to {MAX_TCP_SYNCNT}, got {count!r}")
    schedule = schedule_syn_retries(MAX_TCP_SYNCNT, linear_timeouts, initial_rto)
    times = (0.0, *schedule.retransmissions)[: count + 1]
    return [later - earlier for earlier, later in itertools.pairwise(times)]


def describe_syn_retries(settings: KernelSettings) -> str:
    """One sentence on how this kernel retries an unanswered SYN (its `syn_retry_schedule`)."""
    if settings.syn_retries is None:
        return "this system does not publish its SYN retry settings"
    return schedule_syn_retries(settings.syn_retries, settings.syn_linear_timeouts).describe()
