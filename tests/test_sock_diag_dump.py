"""One port's TCP table from sock_diag's dump: the rows /proc/net/tcp gives, on real sockets."""

from __future__ import annotations

import dataclasses
import errno
import os
import socket
import struct

import pytest
from kernel_helpers import ipv6_loopback

from handshake_lab.kernel import sock_diag_dump
from handshake_lab.kernel.lookup import wait_for_state
from handshake_lab.kernel.proc_tcp import CLOCK_TICKS_PER_SECOND, read_tcp_table
from handshake_lab.kernel.sock_diag import SockDiag
from handshake_lab.model.states import TcpState
from handshake_lab.net.clients import close, connect
from handshake_lab.net.server import LoopbackServer
from handshake_lab.timeouts import SHORT_TIMEOUT, poll_until

pytestmark = [
    pytest.mark.kernel,
    pytest.mark.skipif(
        not SockDiag.available(), reason="this kernel does not let this process use sock_diag"
    ),
]


HOSTS = [
    "127.0.0.1",
    pytest.param(
        "::1",
        marks=pytest.mark.skipif(not ipv6_loopback(), reason="this host has no IPv6 loopback"),
    ),
]


def _by_ends(rows) -> dict:
    """Rows keyed by their two ends, timer_seconds apart: it counts down between two reads."""
    keyed = {(row.local, row.remote): row for row in rows}
    assert len(keyed) == len(rows), rows
    return keyed


def dump_and_proc(port: int):
    """The dump's rows and /proc's, read while nothing on the port changed.

    /proc is read before and after the dump; the reads are repeated until those two agree
    (a SYN-ACK retransmitted in between, say, changes a row). Then each timer the dump gives
    lies between /proc's two readings, within /proc's clock tick.
    """
    reads: dict = {}

    def unchanged() -> bool:
        before = _by_ends(read_tcp_table(port))
        dump = sock_diag_dump.read_port(port)
        after = _by_ends(read_tcp_table(port))
        reads.update(before=before, dump=dump, after=after)
        return {ends: _timerless(row) for ends, row in before.items()} == {
            ends: _timerless(row) for ends, row in after.items()
        }

    assert poll_until(unchanged, timeout=SHORT_TIMEOUT), "the port's rows kept changing"
    dump, before, after = _by_ends(reads["dump"]), reads["before"], reads["after"]
    tick = 1 / CLOCK_TICKS_PER_SECOND
    for ends, row in dump.items():
        if ends in before:
            earlier, later = before[ends].timer_seconds, after[ends].timer_seconds
            assert later <= row.timer_seconds < earlier + tick, (row, earlier, later)
    return reads["dump"], list(before.values())


def _timerless(row):
    return dataclasses.replace(row, timer_seconds=0.0)


def assert_same_rows(port: int) -> list:
    dump, proc = dump_and_proc(port)
    assert sorted(map(_timerless, dump), key=repr) == sorted(map(_timerless, proc), key=repr)
    return dump


def _ports(row) -> set[int]:
    return {row.local[1], row.remote[1]}


@pytest.mark.parametrize("host", HOSTS)
def test_a_ports_rows_are_the_ones_proc_lists(host):
    with (
        LoopbackServer(host, auto_accept=False) as server,
        LoopbackServer(host, auto_accept=False) as other,
    ):
        client = connect(server.address)
        accepted = server.accept()
        closing = connect(server.address)
        closing_end = closing.getsockname()[:2]
        closed = server.accept()
        waiting = connect(server.address)  # finished by the kernel, never accepted
        elsewhere = connect(other.address)  # another port: must not be listed
        ours = {sock.getsockname()[1] for sock in (client, closing, waiting)}
        other_port = other.port
        try:
            close(closing)  # the client closes first and ends in TIME_WAIT
            assert wait_for_state(server.address, closing_end, state=TcpState.CLOSE_WAIT)
            close(closed)
            assert wait_for_state(server.address, closing_end, gone=True) is None
            assert wait_for_state(closing_end, server.address) is TcpState.TIME_WAIT
            rows = assert_same_rows(server.port)
        finally:
            for sock in (waiting, client, accepted, elsewhere):
                close(sock)
    # The port may have been used before: rows of older connections on it are listed too.
    mine = [row for row in rows if row.state is TcpState.LISTEN or ours & _ports(row)]
    assert sorted(row.state.name for row in mine) == [
        "ESTABLISHED",
        "ESTABLISHED",
        "ESTABLISHED",
        "ESTABLISHED",
        "LISTEN",
        "TIME_WAIT",
    ]
    (listener,) = [row for row in rows if row.state is TcpState.LISTEN]
    assert listener.accept_queue_length == 1 and listener.tx_queue == 0
    assert all(other_port not in _ports(row) for row in rows)


def test_a_request_socket_half_way_through_the_handshake_is_listed_with_its_listeners_uid():
    # TCP_DEFER_ACCEPT: the server ignores the client's bare ACK, so the connection stays a
    # SYN_RECV request socket on the server; /proc prints the listener's uid for it.
    with LoopbackServer(auto_accept=False, defer_accept=5) as server:
        client = connect(server.address)
        try:
            rows = assert_same_rows(server.port)
        finally:
            close(client)
    (request,) = [row for row in rows if row.state is TcpState.SYN_RECEIVED]
    (listener,) = [row for row in rows if row.state is TcpState.LISTEN]
    assert request.inode == 0 and request.timer == "retransmit"
    assert request.uid == listener.uid == os.geteuid()


def test_a_socket_bound_but_never_listening_is_in_neither():
    # Linux 6.5+ dumps such sockets when asked for every state bit; /proc never lists them.
    with socket.socket() as bound:
        bound.bind(("127.0.0.1", 0))
        port = bound.getsockname()[1]
        assert sock_diag_dump.read_port(port) == read_tcp_table(port) == []


def test_a_filter_the_kernel_refuses_is_an_oserror_naming_the_errno(monkeypatch):
    # S_EQ's "no" jump of 4 bytes would land on its own port operand: the kernel refuses it.
    refused = struct.pack("=BBH", 11, 8, 4) + sock_diag_dump.port_filter(80)[4:]
    monkeypatch.setattr(sock_diag_dump, "port_filter", lambda port: refused)
    with pytest.raises(OSError, match="EINVAL") as raised:
        sock_diag_dump.read_port(80)
    assert raised.value.errno == errno.EINVAL


def test_a_reply_in_many_datagrams_is_read_to_its_end():
    # 500 rows of 88 bytes (header and struct inet_diag_msg) are more than one datagram of a
    # dump holds (at most 32 KiB): the reply comes in parts, ended by NLMSG_DONE.
    with socket.create_server(("127.0.0.1", 0), backlog=64) as listener:
        port = listener.getsockname()[1]
        for _ in range(500):
            with socket.create_connection(("127.0.0.1", port), timeout=SHORT_TIMEOUT):
                server_side, _ = listener.accept()
            server_side.close()  # after the client: the client's side stays in TIME_WAIT
        rows = assert_same_rows(port)
    assert sum(row.state is TcpState.TIME_WAIT for row in rows) >= 500
