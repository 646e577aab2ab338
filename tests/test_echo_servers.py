"""The two echo servers of notebook 07, on real loopback sockets."""

from __future__ import annotations

import socket

import pytest
from kernel_helpers import wait_for

from handshake_lab.net.clients import set_linger_zero
from handshake_lab.net.echo_servers import (
    LISTENER,
    SelectorEchoServer,
    ThreadPerConnectionEchoServer,
    echo_on_ready,
)
from handshake_lab.net.load_test import echo_round_trip, time_wait_rows

pytestmark = pytest.mark.kernel

SERVERS = [ThreadPerConnectionEchoServer, SelectorEchoServer]


@pytest.mark.parametrize("server_class", SERVERS)
def test_server_echoes_and_leaves_no_time_wait(server_class):
    with server_class() as server:
        before = time_wait_rows(server.port)  # left by an earlier user of the port number
        assert server.address[0] == "127.0.0.1" and server.port > 0
        assert echo_round_trip(server.address, b"hello") == b"hello"
        port = server.port
    assert time_wait_rows(port) - before == frozenset()


def test_time_wait_rows_sees_a_client_that_closes_first():
    with ThreadPerConnectionEchoServer() as server:
        before = time_wait_rows(server.port)
        with socket.create_connection(server.address, timeout=2) as client:
            client.sendall(b"x")
            assert client.recv(1) == b"x"
            ends = (client.getsockname()[:2], server.address)
        # The client closed first (no SO_LINGER 0): its end waits in TIME_WAIT.
        assert wait_for(
            lambda: ends in time_wait_rows(server.port) - before,
            what="the client's TIME_WAIT entry",
        )


@pytest.mark.parametrize("server_class", SERVERS)
def test_server_serves_two_clients_at_once(server_class):
    with server_class() as server:
        with socket.create_connection(server.address, timeout=2) as idle:
            # A connected client that sends nothing must not stop the next one being served.
            assert echo_round_trip(server.address, b"second", timeout=2) == b"second"
            set_linger_zero(idle)


@pytest.mark.parametrize("server_class", SERVERS)
def test_exit_closes_connections_a_client_still_holds(server_class):
    with socket.socket() as client:
        client.settimeout(2)
        with server_class() as server:
            client.connect(server.address)
            client.sendall(b"x")
            assert client.recv(1) == b"x"
        set_linger_zero(client)
        assert client.recv(1) == b""  # the server closed its side on exit


@pytest.mark.parametrize("server_class", SERVERS)
def test_server_runs_once_and_address_needs_it_running(server_class):
    server = server_class()
    with pytest.raises(RuntimeError, match="not running"):
        _ = server.address
    with server:
        pass
    with pytest.raises(RuntimeError, match="runs once"):
        server.__enter__()


def test_servers_refuse_a_non_loopback_host():
    for server_class in SERVERS:
        with pytest.raises(ValueError, match="not a loopback address"):
            server_class("8.8.8.8")


def test_selector_server_keeps_and_raises_the_error_of_on_ready():
    def broken(key, selector):
        raise ZeroDivisionError("learner bug")

    with pytest.raises(RuntimeError, match="SelectorEchoServer thread failed") as caught:
        with SelectorEchoServer(on_ready=broken) as server:
            with pytest.raises(TimeoutError):
                echo_round_trip(server.address, b"x", timeout=0.3)
    assert isinstance(caught.value.__cause__, ZeroDivisionError)

    with SelectorEchoServer(on_ready=broken, raise_errors=False) as server:
        with pytest.raises(TimeoutError):
            echo_round_trip(server.address, b"x", timeout=0.3)
    assert isinstance(server.errors[0], ZeroDivisionError)


def test_selector_server_counts_connections_left_registered():
    def never_unregisters(key, selector):
        if key.data == LISTENER:
            echo_on_ready(key, selector)
            return
        try:
            data = key.fileobj.recv(65536)
        except ConnectionResetError:
            return  # forgets to unregister and close: the socket stays in the selector
        if data:
            key.fileobj.sendall(data)

    with SelectorEchoServer(on_ready=never_unregisters) as server:
        for _ in range(3):
            assert echo_round_trip(server.address, b"abc") == b"abc"
    assert server.still_registered == 3 and server.closed_but_registered == 0


def test_selector_server_counts_connections_closed_but_registered():
    def closes_without_unregister(key, selector):
        if key.data == LISTENER:
            echo_on_ready(key, selector)
            return
        data = key.fileobj.recv(65536)
        key.fileobj.sendall(data)
        key.fileobj.close()

    with SelectorEchoServer(on_ready=closes_without_unregister) as server:
        assert echo_round_trip(server.address, b"abc") == b"abc"
    assert server.closed_but_registered == 1 and server.still_registered == 0


def test_on_ready_must_be_callable():
    with pytest.raises(TypeError, match="on_ready must be a function"):
        SelectorEchoServer(on_ready="echo")
