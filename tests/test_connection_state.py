"""Finding a connection's kernel state by its addresses, through sock_diag and through the table."""

from __future__ import annotations

import importlib

import pytest

import handshake_lab
from handshake_lab.kernel.lookup import connection_state, wait_for_state
from handshake_lab.kernel.sock_diag import SockDiag
from handshake_lab.model.states import TcpState
from handshake_lab.net.loopback import LoopbackServer, close, connect

pytestmark = pytest.mark.kernel

# The module, by its full name: the package's attribute of that name is the function.
module = importlib.import_module("handshake_lab.kernel.lookup")


@pytest.fixture(params=["sock_diag", "tcp table"])
def lookup_by(request, monkeypatch):
    """Run the test through each way of asking the kernel."""
    if request.param == "sock_diag" and not SockDiag.available():
        pytest.skip("this kernel does not let this process use sock_diag")
    monkeypatch.setattr(module, "_sock_diag_available", lambda: request.param == "sock_diag")
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
        assert wait_for_state(server_address, local,
                              state=TcpState.CLOSE_WAIT) is TcpState.CLOSE_WAIT
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
