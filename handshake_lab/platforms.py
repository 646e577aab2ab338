"""Which operating system the lab runs on, asked in one place; a switch simulates another.

Every Linux-only feature (/proc/net/tcp, sock_diag, TCP_INFO, TCP_DEFER_ACCEPT, TCP_SYNCNT,
TCP_SAVE_SYN, packet sockets, network namespaces, the SYN retry sysctls) asks `is_linux()`
here, never sys.platform itself, so that one environment variable can take them all away:
HANDSHAKE_LAB_PLATFORM=darwin (or macos) or =windows makes the package, on Linux, behave as
it does on macOS or Windows as far as that can be simulated. Each Linux-only reader then says
it is unavailable, with its sentence, and the platform's fallback is used (psutil, which
still reads this Linux kernel). The switch only takes features away; it never makes data up,
and the kernel's behaviour stays Linux's. Only Linux can simulate: elsewhere the switch must
name the platform it runs on, or be unset.
"""

from __future__ import annotations

import os
import sys

#: The environment variable that chooses a simulated platform.
SWITCH = "HANDSHAKE_LAB_PLATFORM"
_CHOICES = {
    "linux": "linux",
    "darwin": "darwin",
    "macos": "darwin",
    "windows": "win32",
    "win32": "win32",
}
_NAMES = {"linux": "Linux", "darwin": "macOS", "win32": "Windows"}


def real() -> str:
    """The platform Python runs on: 'linux', 'darwin', 'win32', or another sys.platform."""
    return "linux" if sys.platform.startswith("linux") else sys.platform


def current() -> str:
    """The platform the lab behaves as: the switch's choice when set, else `real()`."""
    chosen = os.environ.get(SWITCH, "").strip().lower()
    if not chosen:
        return real()
    platform = _CHOICES.get(chosen)
    if platform is None:
        raise ValueError(
            f"{SWITCH}={chosen!r} is not a platform the lab can simulate: "
            "set it to darwin, windows or linux, or unset it"
        )
    if platform != real() and real() != "linux":
        raise ValueError(
            f"{SWITCH}={chosen!r}: only Linux can simulate another platform, and this is "
            f"{_NAMES.get(real(), real())}: unset {SWITCH}"
        )
    return platform


def is_linux() -> bool:
    """True where Linux's own interfaces may be used: on Linux, unless the switch says otherwise."""
    return current() == "linux"


def simulated() -> bool:
    """True when the switch makes the lab behave as another platform than the real one."""
    return current() != real()


def name(*, plain: bool = False) -> str:
    """The platform for a sentence: 'macOS', 'Windows', 'Linux', or sys.platform's word;
    ' (simulated on Linux)' is added when the switch chose it, unless `plain`."""
    platform = current()
    text = _NAMES.get(platform, platform)
    return f"{text} (simulated on Linux)" if simulated() and not plain else text
