"""The /proc/net/tcp parser on fixture text recorded from a real kernel (little-endian)."""

from pathlib import Path

import pytest

from handshake_lab.kernel.proc_tcp import ProcNetParseError, format_rows, parse_tcp_table
from handshake_lab.model.states import TcpState

DATA = Path(__file__).parent / "data"


def table(name: str, **kwargs):
    text = (DATA / name).read_text()
    return parse_tcp_table(text, source=name, byteorder="little", **kwargs)


def test_ipv4_listener_with_one_connection_in_its_accept_queue():
    listener, server_side, client, time_wait = table("proc_net_tcp.txt")
    assert listener.state is TcpState.LISTEN
    assert listener.local == ("127.0.0.1", 0xA0AF)
    assert listener.remote == ("0.0.0.0", 0)
    assert listener.accept_queue_length == 1
    assert server_side.state is TcpState.ESTABLISHED
    assert server_side.inode == 0 and not server_side.accepted
    assert server_side.accept_queue_length is None
    assert client.local == server_side.remote and client.remote == server_side.local
    assert client.inode == 354542 and client.accepted
    assert time_wait.state is TcpState.TIME_WAIT and time_wait.timer == "time_wait"


@pytest.mark.parametrize("ticks_per_second, seconds", [(100, 42.92), (1000, 4.292)])
def test_time_wait_timer_is_read_in_seconds(ticks_per_second, seconds):
    # The fixture's TIME_WAIT row says 03:000010C4: timer 3 fires in 0x10C4 = 4292 ticks.
    rows = table("proc_net_tcp.txt", ticks_per_second=ticks_per_second)
    assert [row.timer_seconds for row in rows] == [0.0, 0.0, 0.0, pytest.approx(seconds)]


def test_ipv6_and_ipv4_mapped_rows():
    rows = table("proc_net_tcp6.txt")
    dual_stack_listener = rows[0]
    assert dual_stack_listener.local == ("::", 0xB471)
    assert [row.local for row in rows[1:3]] == [("::1", 0x801D)] * 2
    mapped = rows[3]
    assert mapped.local == ("::ffff:127.0.0.1", 0xB471)
    assert mapped.remote == ("::ffff:127.0.0.1", 0x90BE)
    assert mapped.state is TcpState.ESTABLISHED and mapped.inode == 0


@pytest.mark.parametrize("port, expected", [(0xA0AF, 4), (0xD69A, 2), (0x91CF, 1), (1, 0)])
def test_filter_by_local_or_remote_port(port, expected):
    assert len(table("proc_net_tcp.txt", port=port)) == expected


def test_malformed_line_names_the_file_and_line():
    with pytest.raises(ProcNetParseError, match=r"proc_net_tcp_malformed.txt line 3 .*'ZZ'"):
        table("proc_net_tcp_malformed.txt")


@pytest.mark.parametrize(
    "line",
    [
        "   0: 0100007F:A0AF",
        "   0: 0100007F:A0AF 00000000:0000 0C 00000000:00000001 00:00000000 00000000 0 0 1",
        "   0: 01007F:A0AF 00000000:0000 0A 00000000:00000001 00:00000000 00000000 0 0 1",
    ],
)
def test_truncated_or_impossible_rows_are_errors(line):
    with pytest.raises(ProcNetParseError, match="line 2"):
        parse_tcp_table("header\n" + line + "\n")


def test_big_endian_hosts_print_addresses_the_other_way_round():
    text = (
        "header\n   0: 7F000001:0050 00000000:0000 0A 00000000:00000000 00:00000000 "
        "00000000 0 0 7 1\n"
    )
    (row,) = parse_tcp_table(text, byteorder="big")
    assert row.local == ("127.0.0.1", 80)


def test_row_to_dict_uses_linux_state_names():
    row = table("proc_net_tcp.txt")[0]
    assert row.to_dict()["state"] == "LISTEN"
    assert row.to_dict()["accept_queue_length"] == 1


def test_format_rows_names_each_row_in_a_fixed_order():
    server, client = ("127.0.0.1", 0xA0AF), ("127.0.0.1", 0xD69A)
    rows = table("proc_net_tcp.txt")
    lines = format_rows(reversed(rows), server, (*client, 0, 0)).splitlines()  # others left out
    assert [line.split()[0] for line in lines[1:]] == ["listener", "client", "server"]
    assert lines[1].split()[3] == "LISTEN" and lines[3].split()[-1] == "no"  # inode 0
    assert all(" ESTABLISHED " in line for line in lines[2:])
    assert f"127.0.0.1:{client[1]}" in lines[2]


@pytest.mark.parametrize(("text", "hint"), [(None, "got NoneType"), (b"sl local", "decode bytes")])
def test_anything_but_text_is_refused_with_what_to_pass(text, hint):
    with pytest.raises(TypeError, match=hint):
        parse_tcp_table(text)
