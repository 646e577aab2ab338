"""Read and write classic libpcap files (the format tcpdump -w writes and Wireshark opens).

The format is a 24-byte file header, then per packet a 16-byte record header and the frame.
``write_pcap`` re-encodes each Segment as Ethernet + IP + TCP with correct checksums (payload
bytes are zeros: a Segment keeps only their count); ``write_frames`` stores frames as captured.
Rules: pure file I/O with the standard library; a truncated or foreign file raises
``packets.DecodeError`` saying what is wrong.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterable

from .packets import DecodeError, Segment, decode_frame, encode_frame

MAGIC_MICROSECONDS = 0xA1B2C3D4
MAGIC_NANOSECONDS = 0xA1B23C4D
LINKTYPE_ETHERNET = 1
LINKTYPE_RAW = 101
_LINKTYPE_RAW_ALIASES = (12, 14, 101, 228, 229)  # raw IP, raw IPv4, raw IPv6
SNAPLEN = 262144


def write_frames(frames: Iterable[tuple[float, bytes]], path: str | os.PathLike) -> None:
    """Write (time in epoch seconds, Ethernet frame) pairs, microsecond timestamps."""
    with open(path, "wb") as file:
        file.write(
            struct.pack("<IHHiIII", MAGIC_MICROSECONDS, 2, 4, 0, 0, SNAPLEN, LINKTYPE_ETHERNET)
        )
        for time, frame in frames:
            microseconds = round(time * 1_000_000)
            seconds, fraction = divmod(microseconds, 1_000_000)
            file.write(struct.pack("<IIII", seconds, fraction, len(frame), len(frame)))
            file.write(frame)


def write_pcap(segments: Iterable[Segment], path: str | os.PathLike) -> None:
    """Write Segments to a pcap file that ``tcpdump -r`` shows with the same flags, seq and ack."""
    write_frames(((segment.time, encode_frame(segment)) for segment in segments), path)


def read_frames(path: str | os.PathLike) -> tuple[str, list[tuple[float, bytes]]]:
    """The link ('ethernet' or 'raw') and every (time, frame) in a pcap file."""
    with open(path, "rb") as file:
        data = file.read()
    if len(data) < 24:
        raise DecodeError(f"{path} is not a pcap file: it is only {len(data)} bytes long")
    for byte_order in "<>":
        (magic,) = struct.unpack_from(byte_order + "I", data)
        if magic in (MAGIC_MICROSECONDS, MAGIC_NANOSECONDS):
            break
    else:
        raise DecodeError(
            f"{path} is not a classic pcap file (magic 0x{data[:4].hex()}); "
            "pcapng files can be converted with: editcap -F pcap in.pcapng out.pcap"
        )
    divisor = 1e6 if magic == MAGIC_MICROSECONDS else 1e9
    (linktype,) = struct.unpack_from(byte_order + "I", data, 20)
    if linktype == LINKTYPE_ETHERNET:
        link = "ethernet"
    elif linktype in _LINKTYPE_RAW_ALIASES:
        link = "raw"
    else:
        raise DecodeError(f"{path} has link type {linktype}; only Ethernet (1) and raw IP are read")
    frames = []
    offset = 24
    while offset < len(data):
        if offset + 16 > len(data):
            raise DecodeError(f"{path} is truncated inside the record header at byte {offset}")
        seconds, fraction, captured_len, _ = struct.unpack_from(byte_order + "IIII", data, offset)
        offset += 16
        if offset + captured_len > len(data):
            raise DecodeError(f"{path} is truncated inside the frame at byte {offset}")
        frames.append((seconds + fraction / divisor, data[offset : offset + captured_len]))
        offset += captured_len
    return link, frames


def read_pcap(path: str | os.PathLike) -> list[Segment]:
    """Every TCP segment in a pcap file, decoded; a non-TCP frame raises DecodeError."""
    link, frames = read_frames(path)
    return [decode_frame(frame, time, link=link) for time, frame in frames]
