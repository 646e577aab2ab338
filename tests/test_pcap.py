"""pcap files: round trips, files made by hand, broken files, and tcpdump when it is installed."""

from __future__ import annotations

import shutil
import struct
import subprocess
from pathlib import Path

import pytest

from handshake_lab.model.packets import DecodeError, decode_frame
from handshake_lab.model.pcap import read_frames, read_pcap, write_frames, write_pcap
from handshake_lab.model.tcp_model import Connection
from handshake_lab.timeouts import SHORT_TIMEOUT

DATA = Path(__file__).parent / "data"


def captured_segments():
    frames = ["frame_ipv4_syn", "frame_ipv6_syn_ack", "frame_ipv4_psh_ack"]
    return [
        decode_frame((DATA / f"{name}.bin").read_bytes(), time=1_700_000_000.25 + index)
        for index, name in enumerate(frames)
    ]


def model_segments():
    connection = Connection(2**32 - 1, 12345)
    connection.listen()
    connection.connect()
    connection.send("client", 5)
    connection.close("client")
    connection.close("server")
    return connection.wire


@pytest.mark.parametrize("make_segments", [captured_segments, model_segments])
def test_round_trip(tmp_path, make_segments):
    segments = make_segments()
    path = tmp_path / "lab.pcap"
    write_pcap(segments, path)
    assert read_pcap(path) == segments


def test_frames_are_kept_byte_for_byte(tmp_path):
    frame = (DATA / "frame_ipv4_psh_ack.bin").read_bytes()
    write_frames([(10.000001, frame)], tmp_path / "raw.pcap")
    assert read_frames(tmp_path / "raw.pcap") == ("ethernet", [(10.000001, frame)])


def test_big_endian_nanosecond_raw_ip_file(tmp_path):
    packet = (DATA / "frame_ipv4_syn.bin").read_bytes()[14:]
    header = struct.pack(">IHHiIII", 0xA1B23C4D, 2, 4, 0, 0, 65535, 101)
    record = struct.pack(">IIII", 5, 123456789, len(packet), len(packet))
    path = tmp_path / "ns.pcap"
    path.write_bytes(header + record + packet)
    (segment,) = read_pcap(path)
    assert segment.time == pytest.approx(5.123456789)
    assert segment.flags == "SYN"


def test_broken_files_raise_decode_error(tmp_path):
    good = tmp_path / "good.pcap"
    write_pcap(captured_segments(), good)
    data = good.read_bytes()
    cases = {
        "short.pcap": (data[:10], "only 10 bytes"),
        "foreign.pcap": (b"\x0a\x0d\x0d\x0a" + data[4:], "not a classic pcap"),
        "cut_record.pcap": (data[:30], "record header"),
        "cut_frame.pcap": (data[:50], "inside the frame"),
    }
    for name, (content, message) in cases.items():
        path = tmp_path / name
        path.write_bytes(content)
        with pytest.raises(DecodeError, match=message):
            read_pcap(path)


@pytest.mark.skipif(shutil.which("tcpdump") is None, reason="tcpdump is not installed")
def test_tcpdump_reads_what_we_write(tmp_path):
    path = tmp_path / "model.pcap"
    segments = model_segments()[:3]
    write_pcap(segments, path)
    result = subprocess.run(
        ["tcpdump", "-nn", "-S", "-vv", "-r", str(path)],
        capture_output=True,
        text=True,
        timeout=SHORT_TIMEOUT,
        check=True,
    )
    output = result.stdout
    assert "Flags [S], cksum" in output and f"seq {2**32 - 1}," in output
    assert "Flags [S.]" in output and "seq 12345, ack 0," in output
    assert "Flags [.]" in output and "ack 12346," in output
    assert output.count("(correct)") == 3
