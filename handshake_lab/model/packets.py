"""Decode captured frames (Ethernet or raw IP, then IPv4/IPv6, then TCP) into ``Segment``s.

Pure functions on bytes: no sockets, no clock. ``decode_frame`` turns one frame into a
``Segment``; ``encode_frame`` is its inverse, used only to write pcap files that tcpdump and
Wireshark open (the payload's bytes are not kept, so they are written as zeros).
Rules: a truncated or garbled frame raises ``DecodeError`` (a ValueError) that says what was
wrong, never an IndexError or struct.error; flags are written 'SYN', 'SYN+ACK', 'PSH+ACK' ...
"""

from __future__ import annotations

import ipaddress
import struct
from collections.abc import Iterable
from dataclasses import dataclass

from .addresses import Address

ETHERTYPE_IPV4 = 0x0800
ETHERTYPE_IPV6 = 0x86DD
IPPROTO_TCP = 6
ETHERNET_HEADER_LEN = 14

#: TCP flag bits, in the order they are written ('FIN+PSH+ACK'); ACK last, as tcpdump users read it.
FLAG_BITS = (
    ("FIN", 0x01),
    ("SYN", 0x02),
    ("RST", 0x04),
    ("PSH", 0x08),
    ("URG", 0x20),
    ("ECE", 0x40),
    ("CWR", 0x80),
    ("ACK", 0x10),
)
NO_FLAGS = "NONE"

# TCP option kinds (RFC 9293, RFC 7323, RFC 2018) and the names a Segment uses for them.
_OPTION_NAMES = {0: "EOL", 1: "NOP", 2: "MSS", 3: "WS", 4: "SACK_PERM", 5: "SACK", 8: "TS"}
_OPTION_KINDS = {name: kind for kind, name in _OPTION_NAMES.items()}


class DecodeError(ValueError):
    """A frame is truncated or is not Ethernet/IP/TCP; the message says which part is wrong."""


@dataclass(frozen=True)
class Segment:
    """One TCP segment as seen on the wire.

    ``time`` is in seconds (epoch time for captures, step numbers for the model); ``options``
    is a tuple of (name, value): ('MSS', 65495), ('SACK_PERM', True), ('TS', (tsval, tsecr)),
    ('WS', 7), ('NOP', None), ('EOL', None), ('SACK', ((left, right), ...)).
    """

    time: float
    src: Address
    dst: Address
    flags: str
    seq: int
    ack: int
    window: int = 65535
    payload_len: int = 0
    options: tuple = ()

    @property
    def src_port(self) -> int:
        return self.src[1]

    @property
    def dst_port(self) -> int:
        return self.dst[1]

    @property
    def flag_bits(self) -> int:
        return flags_to_bits(self.flags)

    def has(self, flag: str) -> bool:
        """Whether a flag ('SYN', 'ACK' ...) is set."""
        return flag in self.flags.split("+")


def bits_to_flags(bits: int) -> str:
    """'SYN+ACK' for 0x12; 'NONE' when no flag is set."""
    names = [name for name, bit in FLAG_BITS if bits & bit]
    return "+".join(names) if names else NO_FLAGS


def flags_to_bits(flags: str) -> int:
    """0x12 for 'SYN+ACK' (any order); a ValueError names an unknown flag."""
    if flags == NO_FLAGS:
        return 0
    known = dict(FLAG_BITS)
    bits = 0
    for name in flags.split("+"):
        if name not in known:
            raise ValueError(f"{name!r} is not a TCP flag; use {', '.join(known)} joined by '+'")
        bits |= known[name]
    return bits


def decode_frame(frame: bytes, time: float = 0.0, *, link: str = "ethernet") -> Segment:
    """Decode one captured frame; ``link`` is 'ethernet' (14-byte header) or 'raw' (IP first)."""
    frame = bytes(frame)
    if link == "ethernet":
        _need(frame, ETHERNET_HEADER_LEN, "Ethernet header")
        (ethertype,) = struct.unpack_from("!H", frame, 12)
        packet = frame[ETHERNET_HEADER_LEN:]
    elif link == "raw":
        _need(frame, 1, "IP header")
        ethertype = {4: ETHERTYPE_IPV4, 6: ETHERTYPE_IPV6}.get(frame[0] >> 4, 0)
        packet = frame
    else:
        raise ValueError(f"link must be 'ethernet' or 'raw', not {link!r}")
    if ethertype == ETHERTYPE_IPV4:
        src_host, dst_host, tcp = _decode_ipv4(packet)
    elif ethertype == ETHERTYPE_IPV6:
        src_host, dst_host, tcp = _decode_ipv6(packet)
    else:
        raise DecodeError(f"frame carries ethertype 0x{ethertype:04x}, not IPv4 or IPv6")
    return _decode_tcp(tcp, time, src_host, dst_host)


def _need(data: bytes, length: int, what: str) -> None:
    if len(data) < length:
        raise DecodeError(
            f"truncated frame: the {what} needs {length} bytes, only {len(data)} left"
        )


def _decode_ipv4(packet: bytes) -> tuple[str, str, bytes]:
    _need(packet, 20, "IPv4 header")
    version, header_len = packet[0] >> 4, (packet[0] & 0x0F) * 4
    if version != 4 or header_len < 20:
        raise DecodeError(f"garbled IPv4 header (version {version}, header length {header_len})")
    _need(packet, header_len, "IPv4 header with options")
    (total_len,) = struct.unpack_from("!H", packet, 2)
    if total_len < header_len:
        raise DecodeError(f"garbled IPv4 header: total length {total_len} < header {header_len}")
    _need(packet, total_len, "IPv4 packet")
    if packet[9] != IPPROTO_TCP:
        raise DecodeError(f"IPv4 packet carries protocol {packet[9]}, not TCP (6)")
    src, dst = (str(ipaddress.IPv4Address(packet[i : i + 4])) for i in (12, 16))
    return src, dst, packet[header_len:total_len]


def _decode_ipv6(packet: bytes) -> tuple[str, str, bytes]:
    _need(packet, 40, "IPv6 header")
    if packet[0] >> 4 != 6:
        raise DecodeError(f"garbled IPv6 header (version {packet[0] >> 4})")
    payload_len, next_header = struct.unpack_from("!HB", packet, 4)
    _need(packet, 40 + payload_len, "IPv6 packet")
    if next_header != IPPROTO_TCP:
        raise DecodeError(
            f"IPv6 packet's next header is {next_header}, not TCP (6); extension headers "
            "are not decoded"
        )
    src, dst = (str(ipaddress.IPv6Address(packet[i : i + 16])) for i in (8, 24))
    return src, dst, packet[40 : 40 + payload_len]


def _decode_tcp(tcp: bytes, time: float, src_host: str, dst_host: str) -> Segment:
    _need(tcp, 20, "TCP header")
    src_port, dst_port, seq, ack, offset_byte, flag_byte, window = struct.unpack_from(
        "!HHIIBBH", tcp
    )
    header_len = (offset_byte >> 4) * 4
    if header_len < 20:
        raise DecodeError(f"garbled TCP header: data offset {header_len} bytes is below 20")
    _need(tcp, header_len, "TCP header with options")
    return Segment(
        time=float(time),
        src=(src_host, src_port),
        dst=(dst_host, dst_port),
        flags=bits_to_flags(flag_byte),
        seq=seq,
        ack=ack,
        window=window,
        payload_len=len(tcp) - header_len,
        options=decode_options(tcp[20:header_len]),
    )


def decode_options(raw: bytes) -> tuple:
    """The TCP options as (name, value) pairs; unknown kinds become ('kind-N', bytes)."""
    options = []
    index = 0
    while index < len(raw):
        kind = raw[index]
        if kind in (0, 1):
            options.append((_OPTION_NAMES[kind], None))
            index += 1
            if kind == 0:
                break
            continue
        if index + 1 >= len(raw) or raw[index + 1] < 2 or index + raw[index + 1] > len(raw):
            raise DecodeError(f"garbled TCP option of kind {kind} at option byte {index}")
        length = raw[index + 1]
        body = raw[index + 2 : index + length]
        options.append(_decode_option(kind, body))
        index += length
    return tuple(options)


def _decode_option(kind: int, body: bytes) -> tuple:
    sizes = {2: 2, 3: 1, 4: 0, 8: 8}
    if kind in sizes and len(body) != sizes[kind]:
        raise DecodeError(
            f"TCP option {_OPTION_NAMES[kind]} has {len(body)} bytes, not {sizes[kind]}"
        )
    if kind == 2:
        return ("MSS", struct.unpack("!H", body)[0])
    if kind == 3:
        return ("WS", body[0])
    if kind == 4:
        return ("SACK_PERM", True)
    if kind == 8:
        return ("TS", struct.unpack("!II", body))
    if kind == 5:
        if len(body) % 8:
            raise DecodeError(f"TCP SACK option has {len(body)} bytes, not a multiple of 8")
        edges = struct.unpack(f"!{len(body) // 4}I", body)
        return ("SACK", tuple(zip(edges[::2], edges[1::2], strict=True)))
    return (f"kind-{kind}", bytes(body))


def encode_options(options: tuple) -> bytes:
    """The inverse of ``decode_options``, padded with EOL to a multiple of 4 bytes."""
    raw = bytearray()
    for name, value in options:
        if name in ("EOL", "NOP"):
            raw.append(_OPTION_KINDS[name])
        elif name == "MSS":
            raw += struct.pack("!BBH", 2, 4, value)
        elif name == "WS":
            raw += struct.pack("!BBB", 3, 3, value)
        elif name == "SACK_PERM":
            raw += b"\x04\x02"
        elif name == "TS":
            raw += struct.pack("!BBII", 8, 10, *value)
        elif name == "SACK":
            edges = [edge for block in value for edge in block]
            raw += struct.pack(f"!BB{len(edges)}I", 5, 2 + 4 * len(edges), *edges)
        elif name.startswith("kind-"):
            raw += bytes((int(name[5:]), 2 + len(value))) + bytes(value)
        else:
            raise ValueError(f"cannot encode TCP option {name!r}")
    raw += b"\x00" * (-len(raw) % 4)
    return bytes(raw)


def encode_frame(segment: Segment, *, link: str = "ethernet") -> bytes:
    """Build the frame for a Segment with correct IP and TCP checksums (payload: zero bytes)."""
    src_ip = ipaddress.ip_address(segment.src[0])
    dst_ip = ipaddress.ip_address(segment.dst[0])
    if src_ip.version != dst_ip.version:
        raise ValueError(f"source {src_ip} and destination {dst_ip} are different IP versions")
    options = encode_options(segment.options)
    header_len = 20 + len(options)
    tcp = bytearray(
        struct.pack(
            "!HHIIBBHHH",
            segment.src[1],
            segment.dst[1],
            segment.seq % 2**32,
            segment.ack % 2**32,
            (header_len // 4) << 4,
            flags_to_bits(segment.flags),
            segment.window,
            0,
            0,
        )
        + options
        + bytes(segment.payload_len)
    )
    if src_ip.version == 4:
        pseudo = src_ip.packed + dst_ip.packed + struct.pack("!BBH", 0, IPPROTO_TCP, len(tcp))
    else:
        pseudo = src_ip.packed + dst_ip.packed + struct.pack("!I3xB", len(tcp), IPPROTO_TCP)
    struct.pack_into("!H", tcp, 16, internet_checksum(pseudo + tcp))
    if src_ip.version == 4:
        ip = bytearray(
            struct.pack("!BBHHHBBH", 0x45, 0, 20 + len(tcp), 0, 0x4000, 64, IPPROTO_TCP, 0)
            + src_ip.packed
            + dst_ip.packed
        )
        struct.pack_into("!H", ip, 10, internet_checksum(ip))
        ethertype = ETHERTYPE_IPV4
    else:
        ip = bytearray(struct.pack("!IHBB", 6 << 28, len(tcp), IPPROTO_TCP, 64))
        ip += src_ip.packed + dst_ip.packed
        ethertype = ETHERTYPE_IPV6
    packet = bytes(ip) + bytes(tcp)
    if link == "raw":
        return packet
    # Loopback frames carry all-zero MAC addresses.
    return bytes(12) + struct.pack("!H", ethertype) + packet


def internet_checksum(data: bytes) -> int:
    """The 16-bit ones' complement sum of RFC 1071."""
    if len(data) % 2:
        data += b"\x00"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def first_syn(segments: Iterable[Segment]) -> Segment | None:
    """The first segment with SYN alone (a connect()), which tells client from server; None if none.

    A SYN+ACK does not count: it is the server's answer, and the SYN it answers comes first.
    """
    return next((segment for segment in segments if segment.flags == "SYN"), None)


def initial_sequence_numbers(segments: list[Segment]) -> dict[Address, int]:
    """Each side's ISN, keyed by its (host, port): the seq of the SYN it sent."""
    return {segment.src: segment.seq for segment in segments if segment.has("SYN")}


def relative_seq_ack(segment: Segment, isns: dict[Address, int]) -> tuple[int, int | None]:
    """seq and ack counted from each side's ISN (what Wireshark shows as 'relative').

    seq is relative to the sender's ISN, ack to the receiver's; ack is None when the segment
    has no ACK flag or the receiver's ISN is unknown. A ValueError says when the sender's SYN
    is missing from ``isns``.
    """
    if segment.src not in isns:
        raise ValueError(
            f"no SYN from {segment.src[0]}:{segment.src[1]} was captured, so its ISN is unknown; "
            "capture from before connect()"
        )
    relative_seq = (segment.seq - isns[segment.src]) % 2**32
    if not segment.has("ACK") or segment.dst not in isns:
        return relative_seq, None
    return relative_seq, (segment.ack - isns[segment.dst]) % 2**32
