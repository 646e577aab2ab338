"""The two echo servers and the load test of notebook 07, on real loopback sockets."""

from __future__ import annotations

import selectors
import socket
import time

import pytest
from kernel_helpers import wait_for

from handshake_lab.net.echo_servers import (
    CONNECTION,
    LISTENER,
    LoadTestResult,
    SelectorEchoServer,
    ThreadPerConnectionEchoServer,
    echo_on_ready,
    echo_round_trip,
    measure_connections_per_second,
    time_wait_rows,
)

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
        assert wait_for(lambda: ends in time_wait_rows(server.port) - before,
                        what="the client's TIME_WAIT entry")


@pytest.mark.parametrize("server_class", SERVERS)
def test_server_serves_two_clients_at_once(server_class):
    with server_class() as server:
        with socket.create_connection(server.address, timeout=2) as idle:
            # A connected client that sends nothing must not stop the next one being served.
            assert echo_round_trip(server.address, b"second", timeout=2) == b"second"
            idle.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\0\0\0\0\0\0\0")


@pytest.mark.parametrize("server_class", SERVERS)
def test_exit_closes_connections_a_client_still_holds(server_class):
    with socket.socket() as client:
        client.settimeout(2)
        with server_class() as server:
            client.connect(server.address)
            client.sendall(b"x")
            assert client.recv(1) == b"x"
        client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\0\0\0\0\0\0\0")
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


@pytest.mark.parametrize("server_class", SERVERS)
def test_measure_answers_every_connection(server_class):
    result = measure_connections_per_second(server_class, connections=300, concurrency=3)
    assert isinstance(result, LoadTestResult)
    assert result.answered == result.connections == 300 and result.errors == ()
    assert result.server == server_class.__name__ and result.rate > 0
    assert "300 of 300 connections answered" in str(result)
    assert result.time_wait_left() == frozenset()


def test_measure_accepts_a_factory_function():
    result = measure_connections_per_second(lambda: SelectorEchoServer(backlog=16), 10, 2)
    assert result.answered == 10 and result.server == "SelectorEchoServer"


@pytest.mark.parametrize(("connections", "concurrency"), [(0, 1), (10, 0), (5, 6), (True, 1)])
def test_measure_refuses_bad_counts(connections, concurrency):
    with pytest.raises(ValueError, match="whole number"):
        measure_connections_per_second(SelectorEchoServer, connections, concurrency)


def silent(key, selector):
    """Accepts and registers, never answers: every client times out."""
    if key.data == LISTENER:
        connection, _ = key.fileobj.accept()
        connection.setblocking(False)
        selector.register(connection, selectors.EVENT_READ, CONNECTION)
    else:
        try:
            if key.fileobj.recv(65536):
                return  # read, and never answered
        except ConnectionResetError:
            pass
        selector.unregister(key.fileobj)
        key.fileobj.close()


def test_measure_reports_a_server_that_does_not_answer():
    started = time.monotonic()
    result = measure_connections_per_second(
        lambda: SelectorEchoServer(on_ready=silent), connections=8, concurrency=2, timeout=0.2)
    assert time.monotonic() - started < 3
    assert result.answered == 0 and len(result.errors) == 2
    assert result.errors[0].startswith("TimeoutError")
    assert "first problem: TimeoutError" in str(result)


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
