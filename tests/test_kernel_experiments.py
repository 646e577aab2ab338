"""The kernel behaviours the course claims, each shown once on real loopback sockets.

These run as root and, in CI, again as an unprivileged user: none needs privileges.
Where the host cannot show an effect (tcp_syncookies=2, no ::1) the test is skipped
with the reason, as trio learned to do for backlog tests on varied CI hosts.
"""

from __future__ import annotations

import select
import socket
import time

import pytest
from kernel_helpers import ipv6_loopback

from handshake_lab.kernel.drop_counters import LISTEN_COUNTERS, listen_counters
from handshake_lab.kernel.lookup import connection_state, socket_state, tcp_sockets, wait_for_state
from handshake_lab.kernel.proc_tcp import find_rows
from handshake_lab.kernel.sysctls import kernel_settings
from handshake_lab.kernel.tcp_info import accept_queue, wait_for_syn_retransmit
from handshake_lab.model.states import TcpState
from handshake_lab.net.clients import close, connect, finish_connect, send, start_connect
from handshake_lab.net.server import LoopbackServer
from handshake_lab.timeouts import KERNEL_TIMER_TIMEOUT

pytestmark = pytest.mark.kernel


@pytest.mark.parametrize(
    "host",
    [
        "127.0.0.1",
        pytest.param(
            "::1",
            marks=pytest.mark.skipif(
                not ipv6_loopback(), reason="this host has no IPv6 loopback (::1)"
            ),
        ),
    ],
)
def test_the_handshake_completes_before_accept(host):
    with LoopbackServer(host, auto_accept=False) as server:
        client = connect(server.address)
        try:
            local = client.getsockname()[:2]
            (server_side,) = find_rows(tcp_sockets(server.port), server.address, local)
            # Before any accept(): the kernel finished the handshake on both sides.
            assert socket_state(client) is TcpState.ESTABLISHED
            assert server_side.state is TcpState.ESTABLISHED
            assert server_side.inode == 0, "no process holds the server's side yet"
            assert accept_queue(server.listener).length == 1
            (listener_row,) = [r for r in tcp_sockets(server.port) if r.state is TcpState.LISTEN]
            assert listener_row.accept_queue_length == 1
            accepted = server.accept()
            assert accept_queue(server.listener).length == 0
            (server_side,) = find_rows(tcp_sockets(server.port), server.address, local)
            assert server_side.inode != 0
            assert socket_state(accepted) is TcpState.ESTABLISHED
        finally:
            close(client)


def test_data_sent_before_accept_waits_in_the_kernel():
    with LoopbackServer(auto_accept=False) as server:
        client = connect(server.address)
        send(client, b"early")
        close(client)
        accepted = server.accept()
        assert accepted.recv(100) == b"early"
        assert accepted.recv(100) == b""
        assert socket_state(accepted) is TcpState.CLOSE_WAIT


@pytest.mark.parametrize("backlog", [0, 2])
def test_listen_n_holds_n_plus_one_then_the_next_syn_is_dropped(backlog):
    counters_before = listen_counters()
    with LoopbackServer(backlog=backlog, auto_accept=False) as server:
        clients = [connect(server.address) for _ in range(backlog + 1)]
        assert accept_queue(server.listener) == (backlog + 1, backlog)
        started = time.monotonic()
        waiting = start_connect(server.address)
        clients.append(waiting)
        try:
            # The SYN is silently dropped: no RST, no refusal; the client keeps SYN-SENT
            # and the kernel retransmits the SYN on its timer (about 1 s for the first retry).
            assert socket_state(waiting) is TcpState.SYN_SENT
            assert 0.5 < wait_for_syn_retransmit(waiting, started) < KERNEL_TIMER_TIMEOUT
            assert socket_state(waiting) is TcpState.SYN_SENT
            if counters_before is not None:  # else no /proc/net/netstat to show the drop
                counters_after = listen_counters()
                assert all(
                    counters_after[name] > counters_before[name] for name in LISTEN_COUNTERS
                ), (counters_before, counters_after)
            assert accept_queue(server.listener).length == backlog + 1
            # Accepting one frees a place; the next retransmitted SYN completes the handshake.
            server.accept()
            finish_connect(waiting, timeout=KERNEL_TIMER_TIMEOUT)
            assert socket_state(waiting) is TcpState.ESTABLISHED
        finally:
            for client in clients:
                close(client)


def test_a_closed_port_refuses_at_once_with_a_reset():
    with LoopbackServer(auto_accept=False) as server:
        address = server.address
    with pytest.raises(ConnectionRefusedError):
        connect(address)


@pytest.mark.skipif(
    kernel_settings().syncookies == 2,
    reason="tcp_syncookies=2 answers every SYN with a cookie: there is no "
    "SYN-RECEIVED state to defer",
)
@pytest.mark.skipif(not hasattr(socket, "TCP_DEFER_ACCEPT"), reason="Linux only")
def test_defer_accept_keeps_the_server_side_in_syn_received_until_data():
    with LoopbackServer(auto_accept=False, defer_accept=5) as server:
        client = connect(server.address)
        try:
            local = client.getsockname()[:2]
            assert socket_state(client) is TcpState.ESTABLISHED
            assert connection_state(server.address, local) is TcpState.SYN_RECEIVED
            readable, _, _ = select.select([server.listener], [], [], 0)
            assert readable == [], "accept() would block: nothing is in the accept queue"
            assert accept_queue(server.listener).length == 0
            send(client, b"now")
            assert (
                wait_for_state(server.address, local, state=TcpState.ESTABLISHED)
                is TcpState.ESTABLISHED
            )
            accepted = server.accept()
            assert accepted.recv(10) == b"now"
        finally:
            close(client)


def test_active_close_ends_in_time_wait_passive_close_in_close_wait():
    with LoopbackServer(auto_accept=False) as server:
        client = connect(server.address)
        accepted = server.accept()
        local = client.getsockname()[:2]
        close(client)
        assert (
            wait_for_state(local, server.address, state=TcpState.FIN_WAIT_2) is TcpState.FIN_WAIT_2
        )
        assert socket_state(accepted) is TcpState.CLOSE_WAIT
        close(accepted)
        assert wait_for_state(local, server.address, state=TcpState.TIME_WAIT) is TcpState.TIME_WAIT
        assert wait_for_state(server.address, local, gone=True) is None, "the passive closer"
        (row,) = find_rows(tcp_sockets(local[1]), local, server.address)
        # Linux's TIME_WAIT lasts 60 s (TCP_TIMEWAIT_LEN); its timer has just started.
        assert row.timer == "time_wait" and 50 < row.timer_seconds <= 60, row


def test_linger_zero_close_sends_a_reset_and_leaves_no_time_wait():
    with LoopbackServer(auto_accept=False) as server:
        client = connect(server.address)
        accepted = server.accept()
        local = client.getsockname()[:2]
        close(client, reset=True)
        with pytest.raises(ConnectionResetError):
            accepted.recv(10)
        assert connection_state(local, server.address) is None


def test_waiting_for_a_syn_retransmission_is_bounded():
    with LoopbackServer(auto_accept=False) as server:
        client = connect(server.address)  # connected: its SYN will never be resent
        try:
            started = time.monotonic()
            with pytest.raises(TimeoutError, match="SYN-SENT"):
                wait_for_syn_retransmit(client, started, timeout=0.05)
            assert time.monotonic() - started < 1.0
        finally:
            close(client)
