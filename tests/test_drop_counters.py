"""The /proc/net/netstat reader, on fixture text recorded from a real kernel."""

from pathlib import Path

import pytest

from handshake_lab.kernel.drop_counters import (
    listen_counters,
    parse_listen_counters,
    parse_tcpext,
    tcpext,
)

DATA = Path(__file__).parent / "data"


def test_the_listen_counters_of_a_real_file():
    text = (DATA / "proc_net_netstat.txt").read_text(encoding="ascii")
    assert parse_listen_counters(text) == {"ListenOverflows": 578, "ListenDrops": 578}


@pytest.mark.parametrize(
    "text, expected",
    [
        (
            "TcpExt: A ListenOverflows ListenDrops\nTcpExt: 1 2 3\nIpExt: X\nIpExt: 9\n",
            {"ListenOverflows": 2, "ListenDrops": 3},
        ),
        ("TcpExt: SyncookiesSent\nTcpExt: 0\n", None),  # a kernel without the counters
        ("TcpExt: ListenOverflows ListenDrops\n", None),  # a header without its values
        ("", None),
    ],
)
def test_parse_listen_counters(text, expected):
    assert parse_listen_counters(text) == expected


def test_a_missing_file_gives_none(tmp_path):
    assert listen_counters(str(tmp_path / "missing")) is None


def test_every_tcpext_counter_of_a_real_file_by_name(tmp_path):
    text = (DATA / "proc_net_netstat.txt").read_text(encoding="ascii")
    values = parse_tcpext(text)
    assert values["ListenOverflows"] == 578 and "TCPTimeWaitOverflow" in values
    assert all(isinstance(value, int) for value in values.values())
    assert "InNoRoutes" not in values  # an IpExt counter: only the TcpExt group is read
    assert parse_tcpext("") == {} and tcpext(str(tmp_path / "missing")) == {}
