"""The macOS and Windows readers, on output published from real Macs and Windows machines.

No Mac or Windows machine runs these tests: tests/data/platforms holds real output that
others captured and published (SOURCES.md there says where each comes from), and the
readers' pure parts read it. The last tests check that the lookup policy picks netstat on
a Mac where it can, with the Mac's netstat replaced by a fixture.
"""

from __future__ import annotations

import re
import socket
import subprocess
from pathlib import Path
from types import SimpleNamespace

import pytest

from handshake_lab import platforms
from handshake_lab.kernel import lookup, netstat_states, psutil_states
from handshake_lab.kernel.netstat_states import HOLDER_UNKNOWN, parse_netstat
from handshake_lab.kernel.psutil_states import HELD_BY_A_PROCESS, rows_from_connections
from handshake_lab.model.states import TcpState

FIXTURES = Path(__file__).parent / "data" / "platforms"


def fixture(name: str) -> str:
    return (FIXTURES / name).read_text(encoding="utf-8")


def test_macos_mojave_netstat_rows():
    rows = parse_netstat(fixture("macos_netstat_mojave.txt"))
    assert len(rows) == 7  # the prompt, the title and the header are not rows
    first = rows[0]
    assert (first.local, first.remote, first.state) == (
        ("192.168.1.191", 52044),
        ("31.13.66.35", 443),
        TcpState.ESTABLISHED,
    )
    close_wait = [row for row in rows if row.state is TcpState.CLOSE_WAIT]
    assert [row.local[1] for row in close_wait] == [52040, 52036]
    assert {row.rx_queue for row in close_wait} == {24}  # 24 bytes the program has not read
    assert {row.inode for row in rows} == {HOLDER_UNKNOWN}  # netstat names no holder


def test_macos_listeners_have_the_unspecified_address_and_no_remote_end():
    rows = parse_netstat(fixture("macos_netstat_listeners.txt"))
    assert [(row.local, row.remote, row.state) for row in rows] == [
        (("0.0.0.0", 80), ("0.0.0.0", 0), TcpState.LISTEN),
        (("0.0.0.0", 443), ("0.0.0.0", 0), TcpState.LISTEN),
    ]


def test_macos_tahoe_columns_after_the_state_do_not_matter():
    # Tahoe adds rxbytes, txbytes and a process:pid column whose name holds a space.
    rows = parse_netstat(fixture("macos_netstat_tahoe.txt"))
    assert [(row.local, row.remote, row.state) for row in rows] == [
        (("127.0.0.1", 49515), ("127.0.0.1", 49472), TcpState.ESTABLISHED),
        (("127.0.0.1", 49510), ("127.0.0.1", 49513), TcpState.ESTABLISHED),
    ]


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("tcp6  0  0  ::1.8080  *.*  LISTEN", (("::", 0), ("::1", 8080), TcpState.LISTEN)),
        ("tcp46 0  0  *.8080    *.*  LISTEN", (("::", 0), ("::", 8080), TcpState.LISTEN)),
        ("tcp4  0  0  127.0.0.1.5000  127.0.0.1.6000  SYN_RCVD", None),
        ("tcp4  0  0  127.0.0.1.5000  127.0.0.1.6000  FIN_WAIT_1", None),
    ],
)
def test_bsd_spellings_and_ipv6_ends(line, expected):
    (row,) = parse_netstat(line)
    if expected is None:
        names = {"SYN_RCVD": TcpState.SYN_RECEIVED, "FIN_WAIT_1": TcpState.FIN_WAIT_1}
        assert row.state is names[line.split()[-1]]
    else:
        assert (row.remote, row.local, row.state) == expected


@pytest.mark.parametrize(
    "line",
    [
        "udp4  0  0  *.5353  *.*",  # not TCP
        "tcp4  0  0  127.0.0.1.5000  127.0.0.1.6000  NOT_A_STATE",
        "tcp4  x  0  127.0.0.1.5000  127.0.0.1.6000  ESTABLISHED",
        "tcp6  0  0  fe80::aede:48ff:  *.*  LISTEN",  # an address cut short, no port
    ],
)
def test_a_row_netstat_cannot_give_is_skipped(line):
    assert parse_netstat(line) == []


def windows_connections() -> list[SimpleNamespace]:
    """The Windows fixture's sconn(...) tuples, with this platform's address families."""
    text = fixture("windows_psutil_tcp.txt")
    pattern = re.compile(
        r"sconn\(fd=(?P<fd>-?\d+), family=<AddressFamily\.(?P<family>\w+): \d+>, "
        r"type=<SocketKind\.\w+: \d+>, "
        r"laddr=addr\(ip='(?P<lip>[^']*)', port=(?P<lport>\d+)\), "
        r"raddr=(?:\(\)|addr\(ip='(?P<rip>[^']*)', port=(?P<rport>\d+)\)), "
        r"status='(?P<status>\w+)', pid=(?P<pid>\d+|None)\)"
    )
    connections = [
        SimpleNamespace(
            fd=int(match["fd"]),
            family=getattr(socket, match["family"]),
            laddr=(match["lip"], int(match["lport"])),
            raddr=(match["rip"], int(match["rport"])) if match["rip"] is not None else (),
            status=match["status"],
            pid=None if match["pid"] == "None" else int(match["pid"]),
        )
        for match in pattern.finditer(text)
    ]
    assert len(connections) == text.count("sconn("), "a tuple the pattern did not read"
    return connections


def test_windows_psutil_rows():
    connections = windows_connections()
    rows = rows_from_connections(connections)
    assert len(rows) == len(connections) == 38
    by_end = {(row.local, row.remote): row for row in rows}
    listener_v6 = by_end[(("::", 49671), ("::", 0))]
    listener_v4 = by_end[(("0.0.0.0", 49671), ("0.0.0.0", 0))]
    assert listener_v6.state is listener_v4.state is TcpState.LISTEN
    established = by_end[(("192.168.4.36", 51984), ("208.103.161.1", 443))]
    assert (established.state, established.inode) == (TcpState.ESTABLISHED, HELD_BY_A_PROCESS)
    # Windows lists TIME_WAIT under pid 0, the System Idle Process: no process holds them.
    time_wait = [row for row in rows if row.state is TcpState.TIME_WAIT]
    assert len(time_wait) == 3 and {row.inode for row in time_wait} == {0}
    assert len(rows_from_connections(connections, port=445)) == 2  # IPv4 and IPv6 listeners


@pytest.fixture
def mac_with_netstat(monkeypatch):
    """A simulated Mac whose netstat prints the Tahoe fixture."""
    monkeypatch.setenv(platforms.SWITCH, "darwin")
    monkeypatch.setattr(netstat_states, "available", lambda: True)

    def run(command, **options):
        assert tuple(command) == netstat_states.COMMAND and options["timeout"] > 0
        return subprocess.CompletedProcess(command, 0, fixture("macos_netstat_tahoe.txt"), "")

    monkeypatch.setattr(subprocess, "run", run)


def test_on_a_mac_the_table_comes_from_netstat(mac_with_netstat):
    rows = lookup.tcp_sockets(49515)
    assert [(row.local, row.remote, row.state) for row in rows] == [
        (("127.0.0.1", 49515), ("127.0.0.1", 49472), TcpState.ESTABLISHED)
    ]
    # This process holds no such socket (psutil's list of its own says so): not held here.
    assert rows[0].inode == 0


def test_on_a_mac_netstat_rows_this_process_holds_are_marked_held(mac_with_netstat, monkeypatch):
    own = SimpleNamespace(
        family=socket.AF_INET,
        laddr=("127.0.0.1", 49510),
        raddr=("127.0.0.1", 49513),
        status="ESTABLISHED",
    )  # as psutil.Process().net_connections() gives it: no pid field
    monkeypatch.setattr(psutil_states, "_connections", lambda: [own])
    rows = {row.local[1]: row.inode for row in lookup.tcp_sockets()}
    assert rows == {49515: 0, 49510: HELD_BY_A_PROCESS}


def test_without_macos_netstat_a_simulated_mac_asks_psutil(monkeypatch):
    monkeypatch.setenv(platforms.SWITCH, "darwin")
    assert not netstat_states.available()  # Linux's netstat is not the Mac's
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        assert [row.state for row in lookup.tcp_sockets(port)] == [TcpState.LISTEN]
