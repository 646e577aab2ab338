"""Addresses on loopback: the one (host, port) alias and the checks every socket helper uses.

Pure: `ipaddress` and `socket` constants only, no I/O. Rules: the lab stays on this machine,
so a host that is not a loopback address (127.0.0.0/8 or ::1) is refused with a ValueError
that says why; a wrong type is a TypeError that says what to pass. ``Address`` is how every
layer writes a (host, port) pair, as getsockname() gives it for IPv4 (IPv6's extra flow and
scope fields are cut off by the callers that take them).
"""

from __future__ import annotations

import functools
import ipaddress
import socket

Address = tuple[str, int]


def loopback_host(host: object) -> str:
    """`host` as a loopback address string, or a clear error."""
    if not isinstance(host, str):  # checked before the cache, which cannot hash a list
        raise TypeError(f"host must be a string such as '127.0.0.1', got {type(host).__name__}")
    return _loopback_host(host)


@functools.lru_cache(maxsize=64)
def _loopback_host(host: str) -> str:
    if host == "localhost":
        return "127.0.0.1"
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        raise ValueError(f"{host!r} is not an IP address: use '127.0.0.1' or '::1'") from None
    if not address.is_loopback:
        raise ValueError(
            f"{host} is not a loopback address: the lab stays on this machine "
            "(127.0.0.1 or ::1) so no experiment ever touches a real network"
        )
    return str(address)


def loopback_address(address: object) -> Address:
    """A (host, port) pair on loopback, or a clear error that says what to pass."""
    if not isinstance(address, (tuple, list)) or len(address) < 2:
        raise TypeError(
            f"address must be a (host, port) pair such as server.address, got {address!r}"
        )
    return loopback_host(address[0]), check_port(address[1])


def check_port(port: object) -> int:
    """`port` if it is a TCP port number (1..65535), or an error that says what to pass."""
    if isinstance(port, bool) or not isinstance(port, int):
        raise TypeError(f"port must be an int, got {type(port).__name__}: pass e.g. server.port")
    if not 0 < port < 65536:
        raise ValueError(f"port {port} is out of range: TCP ports are 1..65535")
    return port


def family_of(host: str) -> socket.AddressFamily:
    """AF_INET6 for an IPv6 address string ('::1'), AF_INET for an IPv4 one ('127.0.0.1')."""
    return socket.AF_INET6 if ":" in host else socket.AF_INET
