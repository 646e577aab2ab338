"""The load test of notebook 07: N short connections, counted, on real loopback sockets."""

from __future__ import annotations

import selectors
import time

import pytest

from handshake_lab.net.echo_servers import (
    CONNECTION,
    LISTENER,
    SelectorEchoServer,
    ThreadPerConnectionEchoServer,
)
from handshake_lab.net.load_test import LoadTestResult, measure_connections_per_second

pytestmark = pytest.mark.kernel

SERVERS = [ThreadPerConnectionEchoServer, SelectorEchoServer]


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
        lambda: SelectorEchoServer(on_ready=silent), connections=8, concurrency=2, timeout=0.2
    )
    assert time.monotonic() - started < 3
    assert result.answered == 0 and len(result.errors) == 2
    assert result.errors[0].startswith("TimeoutError")
    assert "first problem: TimeoutError" in str(result)
