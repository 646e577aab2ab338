"""The child process of the namespace tier: capture a handshake in a private network namespace.

Run as ``python -m handshake_lab.capture.namespace_child [--probe] [--slow-motion]``; it prints
one line of JSON on stdout: {"ok": true} for a probe, {"ok": true, "capture": Capture.to_json()}
after the experiment (the parent words the explanation: it knows why this tier was chosen), or
{"ok": false, "stage": "namespace" or "experiment", "errno": ..., "error": ...}. It must be a
fresh process: unshare(CLONE_NEWUSER | CLONE_NEWNET) fails with EINVAL in a multi-threaded one
(a Jupyter kernel). Inside, this process is root of its own user namespace, so it may bring its
private loopback up, open a packet socket on it and put a token-bucket (tbf) qdisc on it for
slow motion, all without touching the machine's real network and without any binary (ioctl and
netlink by hand). It imports the experiment, never the tier policy that starts it.
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import json
import os
import socket
import struct
import sys
from collections.abc import Iterator

from ..timeouts import SHORT_TIMEOUT

CLONE_NEWUSER = 0x10000000
CLONE_NEWNET = 0x40000000
SIOCGIFFLAGS = 0x8913
SIOCSIFFLAGS = 0x8914
IFF_UP = 0x1

# Slow motion: a token bucket just big enough for one SYN (74 bytes with the Ethernet header),
# refilled at 170 bytes/s (about 1.4 kbit/s), so the SYN+ACK and the ACK each wait ~0.4 s.
SLOW_MOTION_RATE_BYTES_PER_S = 170
SLOW_MOTION_BURST_BYTES = 80
SLOW_MOTION_QUEUE_BYTES = 10_000

# rtnetlink constants from linux/netlink.h, linux/rtnetlink.h and linux/pkt_sched.h.
NETLINK_ROUTE = 0
NLMSG_ERROR = 2
NLM_F_REQUEST, NLM_F_ACK, NLM_F_EXCL, NLM_F_CREATE = 0x1, 0x4, 0x200, 0x400
RTM_NEWQDISC, RTM_DELQDISC = 36, 37
TC_H_ROOT = 0xFFFFFFFF
TCA_KIND, TCA_OPTIONS = 1, 2
TCA_TBF_PARMS, TCA_TBF_BURST = 1, 6
TC_LINKLAYER_ETHERNET = 1


def enter_private_network() -> None:
    """Become root of a new user namespace with a new network namespace whose lo is up."""
    uid, gid = os.getuid(), os.getgid()
    flags = CLONE_NEWUSER | CLONE_NEWNET
    if hasattr(os, "unshare"):  # Python 3.12+
        os.unshare(flags)
    else:
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.unshare(flags) != 0:
            error = ctypes.get_errno()
            raise OSError(error, f"unshare: {os.strerror(error)}")
    with contextlib.suppress(FileNotFoundError):  # kernels before 3.19 have no setgroups file
        _write("/proc/self/setgroups", "deny")
    _write("/proc/self/uid_map", f"0 {uid} 1")
    _write("/proc/self/gid_map", f"0 {gid} 1")
    bring_interface_up("lo")


def _write(path: str, text: str) -> None:
    with open(path, "w") as file:
        file.write(text)


def bring_interface_up(name: str) -> None:
    """What ``ip link set NAME up`` does, with two ioctls."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        request = struct.pack("16sH14x", name.encode(), 0)
        (flags,) = struct.unpack_from("H", fcntl.ioctl(sock, SIOCGIFFLAGS, request), 16)
        fcntl.ioctl(sock, SIOCSIFFLAGS, struct.pack("16sH14x", name.encode(), flags | IFF_UP))


def _attribute(kind: int, data: bytes) -> bytes:
    length = 4 + len(data)
    return struct.pack("=HH", length, kind) + data + bytes(-length % 4)


def _netlink_request(message_type: int, flags: int, payload: bytes) -> None:
    with socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_ROUTE) as netlink:
        netlink.settimeout(SHORT_TIMEOUT)
        netlink.bind((0, 0))
        header = struct.pack("=IHHII", 16 + len(payload), message_type, flags, 1, 0)
        netlink.send(header + payload)
        reply = netlink.recv(65536)
    _, reply_type, _, _, _ = struct.unpack_from("=IHHII", reply)
    if reply_type == NLMSG_ERROR:
        (error,) = struct.unpack_from("=i", reply, 16)
        if error:
            raise OSError(-error, f"netlink: {os.strerror(-error)}")


def _qdisc_message(interface: str) -> bytes:
    # struct tcmsg: family, padding, ifindex, handle (1:0), parent (root), info.
    return struct.pack(
        "=BxxxiIII", socket.AF_UNSPEC, socket.if_nametoindex(interface), 0x10000, TC_H_ROOT, 0
    )


@contextlib.contextmanager
def slow_link(
    interface: str = "lo",
    rate_bytes_per_s: int = SLOW_MOTION_RATE_BYTES_PER_S,
    burst_bytes: int = SLOW_MOTION_BURST_BYTES,
) -> Iterator[None]:
    """A tbf qdisc on ``interface`` for the duration (``tc qdisc add dev lo root tbf ...``)."""
    # struct tc_ratespec: cell_log, linklayer, overhead, cell_align, mpu, rate (bytes/s).
    rate = struct.pack("=BBHhHI", 0, TC_LINKLAYER_ETHERNET, 0, 0, 0, rate_bytes_per_s)
    no_peak_rate = bytes(12)
    # struct tc_tbf_qopt: rate, peakrate, limit (bytes queued), buffer and mtu (unused here).
    parameters = rate + no_peak_rate + struct.pack("=III", SLOW_MOTION_QUEUE_BYTES, 0, 0)
    options = _attribute(TCA_TBF_PARMS, parameters) + _attribute(
        TCA_TBF_BURST, struct.pack("=I", burst_bytes)
    )
    message = _qdisc_message(interface)
    payload = message + _attribute(TCA_KIND, b"tbf\0") + _attribute(TCA_OPTIONS, options)
    create = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL
    _netlink_request(RTM_NEWQDISC, create, payload)
    try:
        yield
    finally:
        _netlink_request(RTM_DELQDISC, NLM_F_REQUEST | NLM_F_ACK, message)


def main(argv: list[str]) -> int:
    probe = "--probe" in argv
    slow_motion = "--slow-motion" in argv
    try:
        enter_private_network()
    except OSError as error:
        _report(ok=False, stage="namespace", errno=error.errno, error=str(error))
        return 0
    if probe:
        _report(ok=True)
        return 0
    # Imported here so that a probe stays cheap.
    from .evidence import Capture, Tier
    from .experiment import run_experiment

    try:
        result = run_experiment(slow_down=slow_link if slow_motion else None)
    except Exception as error:  # handed to the parent, which says what failed
        _report(
            ok=False, stage="experiment", errno=getattr(error, "errno", None), error=repr(error)
        )
        return 1
    capture = Capture(
        result.segments,
        Tier.NAMESPACE,
        explanation="",
        states=result.states,
        slow_motion=slow_motion,
    )
    _report(ok=True, capture=capture.to_json())
    return 0


def _report(**fields: object) -> None:
    sys.stdout.write(json.dumps(fields) + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
