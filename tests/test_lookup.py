"""Where a state comes from: kernel.lookup, through sock_diag, the TCP table or psutil."""

from __future__ import annotations

import errno
import importlib
import subprocess
import sys
import types

import pytest

import handshake_lab
from handshake_lab.kernel import psutil_states, sock_diag_dump
from handshake_lab.kernel.lookup import (
    ConnectionLookup,
    connection_state,
    socket_state,
    tcp_sockets,
    wait_for_state,
)
from handshake_lab.kernel.proc_tcp import read_tcp_table as proc
from handshake_lab.kernel.sock_diag import SockDiag
from handshake_lab.model.states import TcpState
from handshake_lab.net.clients import close, connect
from handshake_lab.net.server import LoopbackServer

pytestmark = pytest.mark.kernel

# The module, by its full name: the package's attribute of that name is the function.
module = importlib.import_module("handshake_lab.kernel.lookup")


@pytest.fixture(params=["sock_diag", "tcp table"])
def lookup_by(request, monkeypatch):
    """Run the test through each way of asking the kernel."""
    if request.param == "sock_diag" and not SockDiag.available():
        pytest.skip("this kernel does not let this process use sock_diag")
    for predicate in ("_sock_diag_available", "_sock_diag_dump_available"):
        monkeypatch.setattr(module, predicate, lambda: request.param == "sock_diag")
    return request.param


def test_a_connection_nobody_accepted_is_found_from_both_ends(lookup_by):
    with LoopbackServer(auto_accept=False) as server:
        client = connect(server.address)
        try:
            local = client.getsockname()  # the full tuple: only (host, port) is used
            assert connection_state(server.address, local) is TcpState.ESTABLISHED
            assert connection_state(local, server.address) is TcpState.ESTABLISHED
            assert connection_state(local, ("127.0.0.1", 1)) is None
        finally:
            close(client)


def test_wait_for_state_sees_a_state_come_and_the_connection_go(lookup_by):
    with LoopbackServer(auto_accept=False) as server:
        client = connect(server.address)
        local, server_address = client.getsockname()[:2], server.address
        close(client)  # a FIN to a connection nobody accepted: its server side is CLOSE_WAIT
        assert (
            wait_for_state(server_address, local, state=TcpState.CLOSE_WAIT) is TcpState.CLOSE_WAIT
        )
    # The listener closed with the connection still in its queue: the kernel reset it.
    assert wait_for_state(server_address, local, gone=True) is None
    assert wait_for_state(local, server_address, gone=True) is None


def test_wait_for_state_gives_up_and_returns_what_it_last_saw():
    with LoopbackServer(auto_accept=False) as server:
        client = connect(server.address)
        try:
            local = client.getsockname()[:2]
            seen = wait_for_state(local, server.address, state=TcpState.TIME_WAIT, timeout=0.02)
            assert seen is TcpState.ESTABLISHED
            assert wait_for_state(local, server.address, gone=True, timeout=0.02) is seen
        finally:
            close(client)


def test_asking_for_a_state_and_for_gone_at_once_is_refused():
    with pytest.raises(ValueError, match="not both"):
        wait_for_state(("127.0.0.1", 1), ("127.0.0.1", 2), state=TcpState.CLOSED, gone=True)


def test_connection_state_is_in_the_packages_lazy_exports():
    assert "connection_state" in handshake_lab.__all__
    assert handshake_lab.__getattr__("connection_state") is connection_state
    for function in (tcp_sockets, socket_state, wait_for_state):
        assert handshake_lab.__getattr__(function.__name__) is function


def test_off_linux_every_lookup_asks_psutil(monkeypatch):
    # The fake psutil says CLOSE_WAIT where the kernel says ESTABLISHED: an answer of
    # CLOSE_WAIT can only have come from psutil.
    for predicate in (
        "_sock_diag_available",
        "_sock_diag_dump_available",
        "_proc_tcp_available",
        "_tcp_info_available",
    ):
        monkeypatch.setattr(module, predicate, lambda: False)
    with LoopbackServer(auto_accept=False) as server:
        client = connect(server.address)
        try:
            local = client.getsockname()[:2]
            listed = [
                types.SimpleNamespace(laddr=server.address, raddr=(), status="LISTEN"),
                types.SimpleNamespace(laddr=local, raddr=server.address, status="CLOSE_WAIT"),
            ]
            monkeypatch.setattr(psutil_states, "_connections", lambda: listed)
            rows = tcp_sockets(server.port)
            assert [row.state for row in rows] == [TcpState.LISTEN, TcpState.CLOSE_WAIT]
            assert socket_state(client) is TcpState.CLOSE_WAIT
            assert connection_state(local, server.address) is TcpState.CLOSE_WAIT
            assert connection_state(server.address, local) is None  # psutil lists no such row
            with ConnectionLookup() as lookup:
                assert lookup.held(client) == (TcpState.CLOSE_WAIT, None)
        finally:
            close(client)


def test_a_lookup_reads_a_held_socket_and_many_connections_at_once(lookup_by):
    with LoopbackServer(auto_accept=False) as server:
        clients = [connect(server.address) for _ in range(3)]
        try:
            ends = [client.getsockname()[:2] for client in clients]
            with ConnectionLookup() as lookup:
                prepared = [lookup.prepare(server.address, end) for end in ends]
                prepared.append(lookup.prepare(server.address, ("127.0.0.1", 1)))
                found = lookup.states(prepared)
                assert [(state, inode) for state, inode in found[:3]] == [
                    (TcpState.ESTABLISHED, 0)
                ] * 3  # inode 0: nobody accepted them
                assert found[3] is None and lookup.states([]) == []
                assert lookup.held(clients[0]) == (TcpState.ESTABLISHED, None)
                state, queue = lookup.held(server.listener)
                assert state is TcpState.LISTEN and queue.length == 3
        finally:
            for client in clients:
                close(client)


def _rows_of_one_connection(port: int, client) -> list[str]:
    ends = {port, client.getsockname()[1], 0}  # 0: a listener's remote port
    rows = tcp_sockets(port)
    return sorted(row.state.name for row in rows if {row.local[1], row.remote[1]} <= ends)


def test_a_ports_table_comes_from_the_kernels_filtered_dump(monkeypatch):
    if not SockDiag.available():
        pytest.skip("this kernel does not let this process use sock_diag")

    def no_table(*args, **kwargs):
        raise AssertionError("tcp_sockets(port) read the whole TCP table")

    monkeypatch.setattr(module, "read_tcp_table", no_table)
    with LoopbackServer(auto_accept=False) as server:
        client = connect(server.address)
        try:
            states = _rows_of_one_connection(server.port, client)
        finally:
            close(client)
    assert states == ["ESTABLISHED", "ESTABLISHED", "LISTEN"]


@pytest.mark.parametrize("why", ["no sock_diag", "the kernel refuses the dump"])
def test_a_ports_table_falls_back_to_proc(monkeypatch, why):
    def dump(port):
        if why == "no sock_diag":
            raise AssertionError("the dump was asked for where there is no sock_diag")
        raise OSError(errno.EINVAL, "refused")

    read = []
    monkeypatch.setattr(module, "_sock_diag_dump_available", lambda: why != "no sock_diag")
    monkeypatch.setattr(sock_diag_dump, "read_port", dump)
    monkeypatch.setattr(module, "read_tcp_table", lambda port: read.append(port) or proc(port))
    with LoopbackServer(auto_accept=False) as server:
        client = connect(server.address)
        try:
            states = _rows_of_one_connection(server.port, client)
            assert read == [server.port]
        finally:
            close(client)
    assert states == ["ESTABLISHED", "ESTABLISHED", "LISTEN"]


@pytest.mark.parametrize(
    ("port", "error", "words"),
    [
        (0, ValueError, "out of range"),
        (65536, ValueError, "out of range"),
        ("80", TypeError, "port must be an int"),
        (True, TypeError, "port must be an int"),
    ],
)
def test_a_bad_port_is_refused_before_any_reader_is_asked(port, error, words):
    with pytest.raises(error, match=words):
        tcp_sockets(port)


def test_the_readers_never_import_each_other_or_the_lookup_policy():
    # Each reader asks the kernel one way; only kernel.lookup chooses between them.
    readers = ["proc_tcp", "tcp_info", "sock_diag", "sock_diag_dump", "psutil_states"]
    code = (
        "import sys, importlib; name = sys.argv[1]; "
        "importlib.import_module('handshake_lab.kernel.' + name); "
        "print(' '.join(m.rsplit('.', 1)[1] for m in sys.modules "
        "if m.startswith('handshake_lab.kernel.')))"
    )
    for reader in readers:
        loaded = subprocess.run(
            [sys.executable, "-c", code, reader],
            check=True,
            text=True,
            capture_output=True,
            timeout=60,
        ).stdout.split()
        # The row readers share the row type, TcpSocketRow, defined with the /proc parser.
        rows = {"proc_tcp"} if reader in ("psutil_states", "sock_diag_dump") else set()
        allowed = {reader, "recvmmsg"} | rows
        assert set(loaded) <= allowed, (reader, loaded)


def test_a_connection_named_by_localhost_is_found():
    with LoopbackServer(auto_accept=False) as server:
        client = connect(server.address)
        try:
            local = ("localhost", client.getsockname()[1])
            assert connection_state(local, server.address) is TcpState.ESTABLISHED
        finally:
            close(client)


@pytest.mark.parametrize(
    ("end", "error"), [(("example.org", 80), ValueError), ("127.0.0.1", TypeError)]
)
def test_a_connection_off_loopback_or_not_a_pair_says_what_to_pass(end, error):
    with pytest.raises(error, match="127.0.0.1"):
        connection_state(end, ("127.0.0.1", 80))


@pytest.mark.parametrize("answer", [None, (TcpState.CLOSED, 0)], ids=["none", "CLOSE"])
def test_one_lookup_that_misses_a_connection_is_not_believed(monkeypatch, answer):
    # As one lookup can while the kernel hands an orphaned socket over to its FIN-WAIT-2 entry
    # (benchmarks/lookup_while_closing.py): each function's first lookup answers `answer`.
    real = module.ConnectionLookup.states

    def first_misses(lookup, prepared):
        found = real(lookup, prepared)
        if not getattr(lookup, "missed_once", False):
            lookup.missed_once = True
            return [answer] * len(found)
        return found

    monkeypatch.setattr(module.ConnectionLookup, "states", first_misses)
    with LoopbackServer(auto_accept=False) as server:
        client = connect(server.address)
        try:
            local = client.getsockname()
            assert connection_state(local, server.address) is TcpState.ESTABLISHED
            seen = wait_for_state(local, server.address, gone=True, timeout=0.05)
            assert seen is TcpState.ESTABLISHED
        finally:
            close(client)


class _Answers:
    """A lookup that gives set answers, in turn, and keeps what it was asked."""

    def __init__(self, *answers: list) -> None:
        self.answers, self.asked = list(answers), []

    def states(self, prepared: list) -> list:
        self.asked.append(list(prepared))
        return self.answers.pop(0)


def test_only_answers_that_say_gone_are_asked_again():
    established, closed = (TcpState.ESTABLISHED, 0), (TcpState.CLOSED, 0)
    lookup = _Answers([established, None, closed], [(TcpState.FIN_WAIT_2, 0), closed])
    states = module.confirmed_states(lookup, ["a", "b", "c"])
    assert lookup.asked == [["a", "b", "c"], ["b", "c"]]
    assert states == [TcpState.ESTABLISHED, TcpState.FIN_WAIT_2, TcpState.CLOSED]


def test_gone_is_not_asked_again_where_nothing_was_there_to_lose():
    # Seen before: b not yet (None), c already CLOSED, d ESTABLISHED: only d can be a miss.
    lookup = _Answers([None, None, None], [(TcpState.ESTABLISHED, 0)])
    last = [None, None, TcpState.CLOSED, TcpState.ESTABLISHED]
    states = module.confirmed_states(lookup, ["b", "c", "d"], last[1:])
    assert lookup.asked == [["b", "c", "d"], ["d"]]
    assert states == [None, None, TcpState.ESTABLISHED]
