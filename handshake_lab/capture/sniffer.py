"""Sniff the loopback interface: every frame to or from one TCP port, while a block runs.

A packet socket needs CAP_NET_RAW in its network namespace: root on the machine, or root of
a private namespace (the namespace tier). Rules: the reading thread runs on a
``net.background.Background`` (it sleeps in a selector beside the wake socket, leaving the
block stops and joins it, and its error is raised again there); loopback shows each packet
twice, leaving and arriving, so the leaving copy (PACKET_OUTGOING) is dropped; only frames
to or from the given port are kept. The kernel makes that choice first, with a socket filter
(``socket_filter.PortRule``), so other traffic on loopback cannot fill the socket's queue and
push the lab's frames out. The socket is opened deaf (protocol 0) and bound to the interface
only once the filter is on, so no frame reaches its queue unfiltered; the thread's own checks
stay, as a second look.
"""

from __future__ import annotations

import contextlib
import selectors
import socket
import struct
import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import NamedTuple

from .. import platforms
from ..model.packets import DecodeError, Segment, decode_frame
from ..net.background import Background
from ..timeouts import CAPTURE_TIMEOUT
from .socket_filter import PortRule, attach

__all__ = ["LoopbackSniffer", "open_packet_socket", "sniffer_or_why_not"]

ETH_P_ALL = 0x0003  # linux/if_ether.h: every protocol
PACKET_OUTGOING = 4  # linux/if_packet.h: a frame this host sent
SOL_PACKET, PACKET_STATISTICS = 263, 6  # linux/socket.h, linux/if_packet.h
SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)
# A burst of frames must not overflow the socket while the thread waits for the GIL.
RECEIVE_BUFFER_BYTES = 4 * 1024 * 1024
MAX_FRAME_BYTES = 65536


class FrameCounts(NamedTuple):
    """struct tpacket_stats: tp_packets (which includes the drops) and tp_drops."""

    queued: int
    dropped: int


def open_packet_socket(protocol: int = ETH_P_ALL) -> socket.socket:
    """A raw packet socket that sees every frame (PermissionError without CAP_NET_RAW).

    With protocol 0 it sees none until it is bound with a protocol: a filter attached before
    that bind is on before the first frame is queued."""
    return socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(protocol))


class LoopbackSniffer(AbstractContextManager):
    """A thread that keeps every frame on 'lo' to or from one TCP port, while the block runs.

    ``frames`` holds (kernel timestamp, frame); ``segments`` the same decoded. Entering raises
    PermissionError without CAP_NET_RAW. Leaving the block stops and joins the thread, closes
    its socket and raises again (in a RuntimeError) any error the thread met.
    """

    def __init__(self, port: int, interface: str = "lo") -> None:
        self.port = port
        self.interface = interface
        self.frames: list[tuple[float, bytes]] = []
        self.segments: list[Segment] = []
        self._changed = threading.Condition()
        self._background: Background | None = None
        self._packets: socket.socket | None = None
        self._counted = FrameCounts(0, 0)

    def __enter__(self) -> LoopbackSniffer:
        if self._background is not None:
            raise RuntimeError("this sniffer has already run: make a new LoopbackSniffer()")
        packets = open_packet_socket(protocol=0)
        background = Background("loopback sniffer")
        try:
            packets.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, RECEIVE_BUFFER_BYTES)
            packets.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
            attach(packets, PortRule(self.port))  # the kernel keeps only this port's frames
            packets.bind((self.interface, ETH_P_ALL))  # frames are queued from here on
            packets.setblocking(False)
            background.start(self._run, packets, background, name="loopback-sniffer")
        except BaseException:
            background.close(raise_errors=False)
            packets.close()
            raise
        self._packets, self._background = packets, background
        return self

    def __exit__(self, kind, error, traceback) -> None:
        if self._background is None or self._packets is None:
            return
        try:
            self._background.close(raise_errors=error is None)
        finally:
            self.statistics()  # the last counts, kept for after the block
            self._packets.close()

    def wait_for(self, predicate: Callable[[list[Segment]], bool], timeout: float) -> bool:
        """Wait until ``predicate(segments so far)`` holds; False after ``timeout`` seconds."""
        with self._changed:
            return self._changed.wait_for(lambda: predicate(self.segments), timeout)

    def _run(self, packets: socket.socket, background: Background) -> None:
        wake, stopping = background.wake_socket, background.stopping
        with selectors.DefaultSelector() as selector:
            selector.register(packets, selectors.EVENT_READ)
            selector.register(wake, selectors.EVENT_READ)
            while not stopping.is_set():
                # The timeout only bounds the wait; an idle sniffer keeps listening.
                ready = {key.fileobj for key, _ in selector.select(CAPTURE_TIMEOUT)}
                if wake in ready:
                    break
                if packets in ready:
                    self._read_waiting(packets)
        self._read_waiting(packets)  # what arrived before the stop was asked for

    def statistics(self) -> FrameCounts:
        """Frames the kernel queued to this sniffer so far, and those it dropped because the
        queue was full (PACKET_STATISTICS, which resets at each read: added up here)."""
        if self._packets is not None and self._packets.fileno() >= 0:
            queued, dropped = struct.unpack(
                "II", self._packets.getsockopt(SOL_PACKET, PACKET_STATISTICS, 8)
            )
            before = self._counted
            self._counted = FrameCounts(before.queued + queued, before.dropped + dropped)
        return self._counted

    def _read_waiting(self, packets: socket.socket) -> None:
        """Read every frame the socket holds now; keep the lab's."""
        kept: list[tuple[float, bytes, Segment]] = []
        while True:
            try:
                frame, ancillary, _, address = packets.recvmsg(
                    MAX_FRAME_BYTES, socket.CMSG_SPACE(16)
                )
            except BlockingIOError:
                break
            if address[2] == PACKET_OUTGOING:
                continue
            timestamp = _kernel_timestamp(ancillary)
            try:
                segment = decode_frame(frame, timestamp)
            except DecodeError:
                continue  # not TCP over IP: not ours
            if self.port in (segment.src_port, segment.dst_port):
                kept.append((timestamp, frame, segment))
        if kept:
            with self._changed:
                self.frames += [(timestamp, frame) for timestamp, frame, _ in kept]
                self.segments += [segment for _, _, segment in kept]
                self._changed.notify_all()


def _kernel_timestamp(ancillary: list[tuple[int, int, bytes]]) -> float:
    """The epoch time the kernel stamped on a frame (SO_TIMESTAMPNS); now if it did not."""
    for level, kind, data in ancillary:
        if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS and len(data) >= 16:
            seconds, nanoseconds = struct.unpack_from("qq", data)
            return seconds + nanoseconds / 1e9
    return time.time()


def sniffer_or_why_not(
    stack: contextlib.ExitStack, port: int
) -> tuple[LoopbackSniffer | None, str]:
    """A running sniffer of `port` (closed by `stack`), or None and why this process cannot
    capture, in words to put in a sentence."""
    if not platforms.is_linux() or not hasattr(socket, "AF_PACKET"):
        return None, f"{platforms.name()} has no Linux packet sockets"
    try:
        return stack.enter_context(LoopbackSniffer(port)), ""
    except PermissionError:
        return None, "capturing needs root or CAP_NET_RAW"
    except OSError as error:  # no loopback interface to bind, say
        return None, f"a packet socket could not be opened ({error.strerror or error})"
