"""ss and tcpdump beside the lab's own view: run where installed, one sentence where not."""

from __future__ import annotations

import shutil

import pytest

from handshake_lab.capture.shipped import load_shipped_capture
from handshake_lab.exercises import command_line
from handshake_lab.kernel.lookup import wait_for_state
from handshake_lab.model.pcap import read_pcap
from handshake_lab.model.states import TcpState
from handshake_lab.net.clients import close, connect
from handshake_lab.net.server import LoopbackServer


def test_a_missing_tool_is_one_sentence_that_says_how_to_get_it(monkeypatch):
    monkeypatch.setattr(command_line.shutil, "which", lambda name: None)
    text = command_line.run_tool(["tcpdump", "-r", "x.pcap"])
    assert text.startswith("tcpdump is not installed on this machine:") and "apt-get" in text
    assert text.count(".") == 1 and "\n" not in text


def test_a_failing_tool_says_so():
    if shutil.which("ss") is None:
        pytest.skip("ss is not installed here")
    assert "failed (exit status" in command_line.run_tool(["ss", "--no-such-option"])


def test_save_pcap_writes_what_read_pcap_reads_back(tmp_path):
    shipped = load_shipped_capture()
    path = command_line.save_pcap(shipped, tmp_path)
    assert path.name == command_line.PCAP_NAME
    assert [(s.flags, s.seq, s.ack) for s in read_pcap(path)] == [
        (s.flags, s.seq, s.ack) for s in shipped.segments
    ]
    with pytest.raises(FileNotFoundError, match="save_pcap"):
        command_line.tcpdump_read(tmp_path / "missing.pcap")


def test_tcpdump_shows_the_shipped_capture_with_its_absolute_numbers(tmp_path):
    if shutil.which("tcpdump") is None:
        pytest.skip("tcpdump is not installed here")
    shipped = load_shipped_capture()
    lines = command_line.tcpdump_read(command_line.save_pcap(shipped, tmp_path)).splitlines()
    assert len(lines) == len(shipped.segments)
    assert f"seq {shipped.segments[0].seq}," in lines[0] and "Flags [S]" in lines[0]


@pytest.mark.kernel
def test_ss_and_the_lab_show_the_same_time_wait_connection():
    if shutil.which("ss") is None:
        pytest.skip("ss is not installed here")
    with LoopbackServer(auto_accept=False) as server:
        client = connect(server.address)
        served = server.accept()
        client_end = client.getsockname()[:2]
        close(client)
        close(served)
        assert wait_for_state(client_end, server.address, state=TcpState.TIME_WAIT)
        text = command_line.ss_next_to_lab(client_end, server.address)
    lab, ss = text.split("ss -tano")
    assert "TIME_WAIT  timer time_wait" in lab, text
    assert "TIME-WAIT" in ss and f":{client_end[1]} " in ss and "timer:(timewait," in ss, text


def test_save_pcap_writes_next_to_the_notebook_where_it_may(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = command_line.save_pcap(load_shipped_capture())
    assert path == command_line.Path(command_line.PCAP_NAME) and (tmp_path / path).is_file()
    with pytest.raises(ValueError, match="capture with segments"):
        command_line.save_pcap("not a capture")
