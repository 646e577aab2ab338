"""LoopbackServer and the client helpers: their promises and their answers to bad input."""

from __future__ import annotations

import errno
import socket
import threading

import pytest
from kernel_helpers import wait_for

from handshake_lab.kernel.lookup import socket_state
from handshake_lab.kernel.tcp_info import accept_queue
from handshake_lab.model.states import TcpState
from handshake_lab.net.clients import close, connect, finish_connect, receive, send, start_connect
from handshake_lab.net.load_test import time_wait_rows
from handshake_lab.net.server import LoopbackServer

pytestmark = pytest.mark.kernel


def test_echo_server_answers_and_exit_joins_every_thread():
    before = set(threading.enumerate())
    with LoopbackServer() as server:
        host, port = server.address
        assert host == "127.0.0.1" and 0 < port < 65536
        clients = [connect(server.address) for _ in range(3)]
        for number, client in enumerate(clients):
            send(client, b"ping %d" % number)
            assert receive(client) == b"ping %d" % number
        for client in clients:
            close(client)
    assert set(threading.enumerate()) <= before


def test_exit_closes_connections_still_open():
    with LoopbackServer() as server:
        client = connect(server.address)
        send(client, b"x")
        assert receive(client) == b"x"
    assert receive(client) == b""  # the server side was closed on exit
    close(client)


def test_an_exception_in_the_handler_is_raised_in_the_caller():
    def broken(conn):
        conn.recv(10)
        raise ZeroDivisionError("handler bug")

    with pytest.raises(RuntimeError, match="a server thread failed") as caught:
        with LoopbackServer(handler=broken) as server:
            client = connect(server.address)
            send(client, b"go")
            assert receive(client) == b""  # the handler's finally closes the connection
            close(client)
    assert isinstance(caught.value.__cause__, ZeroDivisionError)


@pytest.mark.parametrize("reset", [True, False], ids=["client-resets", "echo-left-unread"])
def test_a_client_that_resets_is_the_end_of_its_connection_not_a_server_error(reset):
    """RST from the client (SO_LINGER 0, or close() with the echo unread) is normal TCP."""
    with LoopbackServer() as server:
        for _ in range(20):
            client = connect(server.address)
            send(client, b"hello")
            if not reset:  # close() with the echo unread in its buffer sends RST too
                wait_for(lambda client=client: client.recv(5, socket.MSG_PEEK), what="the echo")
            close(client, reset=reset)
    # Leaving the block raised nothing: no "a server thread failed".


RERUNS = 20


def test_rerunning_a_server_many_times_never_meets_address_in_use():
    """Each run leaves its server's port in TIME_WAIT (the server closes first) while a server
    from an earlier run still listens: a fixed port would be refused by that one, and the
    TIME_WAIT port can be bound again only because the server set SO_REUSEADDR."""
    with LoopbackServer(auto_accept=False) as forgotten:  # a cell run earlier, never closed
        ports = {forgotten.port}
        for _ in range(RERUNS):
            with LoopbackServer(auto_accept=False) as server:
                client = connect(server.address)
                accepted = server.accept()
                ends = (accepted.getsockname()[:2], accepted.getpeername()[:2])
                close(accepted)  # the server closes first: its end will wait in TIME_WAIT
                assert receive(client) == b""
                close(client)
                port = server.port
            ports.add(port)
            wait_for(
                lambda ends=ends, port=port: ends in time_wait_rows(port),
                what="the server's end in TIME_WAIT",
            )
            # The hazard is there: a socket without SO_REUSEADDR cannot bind this port now...
            with socket.socket() as plain, pytest.raises(OSError) as refused:
                plain.bind(("127.0.0.1", port))
            assert refused.value.errno == errno.EADDRINUSE
            # ...one with it can, because the server's sockets (now in TIME_WAIT) had it too.
            with socket.socket() as again:
                again.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                again.bind(("127.0.0.1", port))
    assert len(ports) == RERUNS + 1  # port 0: every run got a free port of its own


def test_manual_accept_times_out_when_nobody_connects():
    with LoopbackServer(auto_accept=False) as server, pytest.raises(TimeoutError):
        server.accept(timeout=0.05)


def test_start_connect_catches_the_handshake_in_flight_and_finishes_it():
    with LoopbackServer(auto_accept=False) as server:
        client = start_connect(server.address)
        try:
            assert socket_state(client) in (TcpState.SYN_SENT, TcpState.ESTABLISHED)
            finish_connect(client)
            assert socket_state(client) is TcpState.ESTABLISHED
            assert accept_queue(server.listener).length == 1
        finally:
            close(client)


def test_ipv6_server_when_available():
    try:
        server = LoopbackServer("::1", auto_accept=False)
        with server:
            client = connect(server.address)
            assert server.accept().getpeername()[:2] == client.getsockname()[:2]
            close(client)
    except OSError as error:
        pytest.skip(f"no IPv6 loopback here: {error}")


# -- bad input: each answered by an exception that names the fix ---------------------
@pytest.mark.parametrize(
    "host, error, hint",
    [
        ("8.8.8.8", ValueError, "not a loopback address"),
        ("192.168.1.10", ValueError, "stays on this machine"),
        ("2001:db8::1", ValueError, "not a loopback address"),
        ("example.org", ValueError, "use '127.0.0.1' or '::1'"),
        (127001, TypeError, "must be a string"),
    ],
)
def test_non_loopback_hosts_are_refused(host, error, hint):
    with pytest.raises(error, match=hint):
        LoopbackServer(host)
    with pytest.raises(error, match=hint):
        connect((host, 80))


@pytest.mark.parametrize(
    "address, error, hint",
    [
        (("127.0.0.1", 0), ValueError, "out of range"),
        (("127.0.0.1", 65536), ValueError, "out of range"),
        (("127.0.0.1", "80"), TypeError, "port must be an int"),
        (("127.0.0.1", True), TypeError, "port must be an int"),
        ("127.0.0.1:80", TypeError, r"\(host, port\) pair"),
        (None, TypeError, r"\(host, port\) pair"),
    ],
)
def test_bad_addresses_are_refused(address, error, hint):
    with pytest.raises(error, match=hint):
        connect(address)


@pytest.mark.parametrize(
    "kwargs, hint",
    [
        ({"backlog": -1}, "backlog must be an int >= 0"),
        ({"backlog": "5"}, "backlog must be an int >= 0"),
        ({"defer_accept": 0}, "defer_accept must be a whole number"),
        ({"defer_accept": 1.5}, "defer_accept must be a whole number"),
        ({"handler": None}, "pass auto_accept=False"),
    ],
)
def test_bad_server_options_are_refused(kwargs, hint):
    with pytest.raises(ValueError, match=hint):
        LoopbackServer(**kwargs)


def test_manual_accept_on_an_auto_accepting_server_is_refused():
    with LoopbackServer() as server, pytest.raises(RuntimeError, match="auto_accept=False"):
        server.accept()


def test_use_after_close_is_refused():
    with LoopbackServer(auto_accept=False) as server:
        client = connect(server.address)
    close(client)
    with pytest.raises(RuntimeError, match="not running"):
        server.accept()
    with pytest.raises(RuntimeError, match="not running"):
        server.address  # noqa: B018 - the property raises
    with pytest.raises(OSError, match="already closed"):
        send(client, b"x")
    with pytest.raises(OSError, match="already closed"):
        receive(client)
    with pytest.raises(RuntimeError, match="runs once"):
        server.__enter__()


@pytest.mark.parametrize("data, hint", [("text", "encode text first"), (42, "takes bytes")])
def test_send_wants_bytes(data, hint):
    with LoopbackServer() as server:
        client = connect(server.address)
        try:
            with pytest.raises(TypeError, match=hint):
                send(client, data)
        finally:
            close(client)


@pytest.mark.parametrize("timeout", [0, -1, "5", None, float("nan"), float("inf")])
def test_timeouts_must_be_positive_numbers(timeout):
    with LoopbackServer() as server, pytest.raises(ValueError, match="positive, finite number"):
        connect(server.address, timeout=timeout)


def test_close_is_idempotent_and_checks_its_argument():
    sock = socket.socket()
    close(sock)
    close(sock)
    with pytest.raises(TypeError, match="expected a socket"):
        close("not a socket")


@pytest.mark.parametrize("host", [["127.0.0.1"], ("127.0.0.1",), None, 127])
def test_a_host_that_is_not_a_string_says_what_to_pass(host):
    with pytest.raises(TypeError, match="host must be a string such as '127.0.0.1'"):
        LoopbackServer(host=host)


def test_a_connect_that_meets_a_full_queue_says_why_it_may_time_out():
    with LoopbackServer(backlog=0, auto_accept=False) as server:
        first = connect(server.address)  # listen(0) holds one: the queue is now full
        try:
            with pytest.raises(TimeoutError, match="accept queue is full") as raised:
                connect(server.address, timeout=0.3)
            assert isinstance(raised.value.__cause__, TimeoutError)
        finally:
            close(first)
