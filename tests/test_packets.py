"""Decoding captured frames: real loopback frames in tests/data, and broken ones."""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from handshake_lab.model.packets import (
    DecodeError,
    Segment,
    bits_to_flags,
    decode_frame,
    decode_options,
    encode_frame,
    first_syn,
    flags_to_bits,
    initial_sequence_numbers,
    relative_seq_ack,
)

DATA = Path(__file__).parent / "data"


def fixture(name: str) -> bytes:
    return (DATA / f"{name}.bin").read_bytes()


def test_ipv4_syn_with_options():
    segment = decode_frame(fixture("frame_ipv4_syn"), time=1.5)
    assert segment.time == 1.5
    assert segment.src[0] == segment.dst[0] == "127.0.0.1"
    assert (segment.src_port, segment.dst_port) == (49804, 33949)
    assert (segment.flags, segment.seq, segment.ack) == ("SYN", 1321645807, 0)
    assert (segment.window, segment.payload_len) == (65495, 0)
    assert [name for name, _ in segment.options] == ["MSS", "SACK_PERM", "TS", "NOP", "WS"]
    options = dict(segment.options)
    assert options["MSS"] == 65495 and options["WS"] == 10 and options["TS"][1] == 0


def test_ipv4_data_segment_counts_its_payload():
    segment = decode_frame(fixture("frame_ipv4_psh_ack"))
    assert (segment.flags, segment.payload_len) == ("PSH+ACK", 6)
    assert segment.options[:2] == (("NOP", None), ("NOP", None))


def test_ipv6_syn_ack():
    segment = decode_frame(fixture("frame_ipv6_syn_ack"))
    assert segment.src[0] == segment.dst[0] == "::1"
    assert (segment.flags, segment.seq, segment.ack) == ("SYN+ACK", 3337091011, 2986618962)
    assert dict(segment.options)["MSS"] == 65476


def test_truncated_fixture_raises_decode_error():
    with pytest.raises(DecodeError, match="truncated"):
        decode_frame(fixture("frame_truncated"))


@pytest.mark.parametrize("name", ["frame_ipv4_syn", "frame_ipv6_syn_ack", "frame_ipv4_psh_ack"])
def test_every_truncation_raises_decode_error_not_index_error(name):
    frame = fixture(name)
    for length in range(len(frame)):
        with pytest.raises(DecodeError):
            decode_frame(frame[:length])


def test_garbled_frames_say_what_is_wrong():
    frame = bytearray(fixture("frame_ipv4_syn"))
    arp = bytes(12) + b"\x08\x06" + bytes(frame[14:])
    with pytest.raises(DecodeError, match="ethertype 0x0806"):
        decode_frame(arp)
    udp = bytearray(frame)
    udp[14 + 9] = 17
    with pytest.raises(DecodeError, match="protocol 17"):
        decode_frame(bytes(udp))
    short_offset = bytearray(frame)
    short_offset[14 + 20 + 12] = 0x40  # data offset 16 bytes
    with pytest.raises(DecodeError, match="data offset"):
        decode_frame(bytes(short_offset))
    with pytest.raises(DecodeError, match="option of kind 2"):
        decode_options(b"\x02\x09\x00\x00")


def test_raw_ip_link_and_unknown_link():
    frame = fixture("frame_ipv4_syn")
    assert decode_frame(frame[14:], link="raw") == decode_frame(frame)
    with pytest.raises(ValueError, match="link"):
        decode_frame(frame, link="token-ring")


@pytest.mark.parametrize(
    ("bits", "flags"),
    [
        (0x02, "SYN"),
        (0x12, "SYN+ACK"),
        (0x10, "ACK"),
        (0x11, "FIN+ACK"),
        (0x18, "PSH+ACK"),
        (0x04, "RST"),
        (0x14, "RST+ACK"),
        (0x00, "NONE"),
    ],
)
def test_flags_both_ways(bits, flags):
    assert bits_to_flags(bits) == flags
    assert flags_to_bits(flags) == bits


def test_unknown_flag_is_refused():
    with pytest.raises(ValueError, match="not a TCP flag"):
        flags_to_bits("SYN+HELLO")


@pytest.mark.parametrize("name", ["frame_ipv4_syn", "frame_ipv6_syn_ack", "frame_ipv4_psh_ack"])
def test_encode_then_decode_gives_the_same_segment(name):
    segment = decode_frame(fixture(name), time=3.0)
    assert decode_frame(encode_frame(segment), time=3.0) == segment
    assert decode_frame(encode_frame(segment, link="raw"), time=3.0, link="raw") == segment


def test_encoded_checksums_are_valid():
    frame = encode_frame(decode_frame(fixture("frame_ipv4_syn")))
    ip, tcp = frame[14:34], frame[34:]
    source, destination = ip[12:16], ip[16:20]
    assert _ones_complement_sum(ip) == 0xFFFF
    pseudo = source + destination + struct.pack("!BBH", 0, 6, len(tcp))
    assert _ones_complement_sum(pseudo + tcp) == 0xFFFF


def _ones_complement_sum(data: bytes) -> int:
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return total


def test_relative_numbers_count_from_each_isn():
    client, server = ("127.0.0.1", 40000), ("127.0.0.1", 8000)
    segments = [
        Segment(0, client, server, "SYN", 2**32 - 1, 0),
        Segment(1, server, client, "SYN+ACK", 77, 0),
        Segment(2, client, server, "ACK", 0, 78),
    ]
    isns = initial_sequence_numbers(segments)
    assert isns == {client: 2**32 - 1, server: 77}
    assert [relative_seq_ack(s, isns) for s in segments] == [(0, None), (0, 1), (1, 1)]
    stranger = Segment(3, ("127.0.0.1", 1), server, "ACK", 5, 5)
    with pytest.raises(ValueError, match="ISN is unknown"):
        relative_seq_ack(stranger, isns)


def test_first_syn_is_the_first_bare_syn_not_a_syn_ack():
    client, server = ("127.0.0.1", 40000), ("127.0.0.1", 8000)
    stray_ack = Segment(0, server, client, "ACK", 9, 9)
    syn_ack = Segment(1, server, client, "SYN+ACK", 77, 5)
    syn = Segment(2, client, server, "SYN", 4, 0)
    retry = Segment(3, client, server, "SYN", 4, 0)
    assert first_syn([stray_ack, syn_ack, syn, retry]) is syn
    assert first_syn(iter([retry, syn])) is retry
    assert first_syn([stray_ack, syn_ack]) is None
    assert first_syn([]) is None
