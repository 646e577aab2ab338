"""The one threaded-server base: errors handed back, stuck threads named, the context copied."""

from __future__ import annotations

import errno
import threading

import pytest
from kernel_helpers import wait_for

from handshake_lab.net import threaded_server
from handshake_lab.net.clients import close, connect, receive, send
from handshake_lab.net.echo_servers import SelectorEchoServer, ThreadPerConnectionEchoServer
from handshake_lab.net.server import LoopbackServer
from handshake_lab.net.threaded_server import ThreadedServer
from handshake_lab.record.recorder import Recorder

pytestmark = pytest.mark.kernel


class FailsInItsConnectionThread(ThreadedServer):
    def _serve(self, conn):
        conn.recv(10)
        raise ZeroDivisionError("bug in a connection thread")


class AcceptFailsLikeAFullFdTable(ThreadedServer):
    def _serve(self, conn):  # pragma: no cover - accept() fails before any connection
        raise AssertionError("never reached")

    def _accept_one(self, listener):
        listener.accept()[0].close()
        raise OSError(errno.EMFILE, "Too many open files")


def test_an_exception_in_a_connection_thread_is_raised_by_close():
    with pytest.raises(RuntimeError, match="a FailsInItsConnectionThread thread failed") as caught:
        with FailsInItsConnectionThread() as server:
            client = connect(server.address)
            send(client, b"go")
            assert receive(client) == b""  # the thread raised, then closed its connection
            close(client)
    assert isinstance(caught.value.__cause__, ZeroDivisionError)
    assert server.served == 1


@pytest.mark.skipif(not hasattr(Exception, "add_note"), reason="exception notes: Python 3.11+")
def test_when_the_block_fails_too_its_error_says_a_thread_failed():
    with pytest.raises(AssertionError, match="no answer") as caught:
        with FailsInItsConnectionThread() as server:
            client = connect(server.address)
            send(client, b"go")
            reply = receive(client)
            close(client)
            assert reply, "no answer from the server"
    assert caught.value.__notes__ == [
        "Meanwhile a FailsInItsConnectionThread thread failed: "
        "ZeroDivisionError: bug in a connection thread"
    ]


def test_an_exception_in_the_accept_thread_is_raised_by_close():
    with pytest.raises(RuntimeError, match="thread failed") as caught:
        with AcceptFailsLikeAFullFdTable() as server:
            client = connect(server.address)
            wait_for(lambda: server.errors, what="the accept thread failing")
            close(client)
    assert isinstance(caught.value.__cause__, OSError)
    assert caught.value.__cause__.errno == errno.EMFILE


def test_a_handler_stuck_past_the_deadline_is_named(monkeypatch):
    monkeypatch.setattr(threaded_server, "THREAD_JOIN_TIMEOUT", 0.3)
    entered, release = threading.Event(), threading.Event()

    def stuck(conn):  # waits on something that is not its socket: shutdown() cannot wake it
        entered.set()
        release.wait()

    server = LoopbackServer(handler=stuck)
    try:
        with pytest.raises(RuntimeError, match=r"after 0\.3 s: \['handshake-lab-handler'\]"):
            with server:
                client = connect(server.address)
                assert entered.wait(2)
                close(client)
        with pytest.raises(RuntimeError, match="not running"):
            server.address  # noqa: B018 - closed, even though a thread would not stop
    finally:
        release.set()  # the thread ends, and the last one out closes the wake-up pair


@pytest.mark.parametrize(
    "server_class", [LoopbackServer, ThreadPerConnectionEchoServer, SelectorEchoServer]
)
def test_every_server_is_a_threaded_server(server_class):
    assert issubclass(server_class, ThreadedServer)


def test_a_server_started_inside_a_recorder_reports_its_accept_calls():
    with Recorder() as recorder:
        with LoopbackServer() as server:  # accepts and echoes in threads of its own
            client = connect(server.address)
            send(client, b"hi")
            assert receive(client) == b"hi"
            close(client)
    spans = recorder.recording.call_spans()
    accepts = [s for s in spans if (s.lane, s.name) == ("listener", "accept()")]
    assert len(accepts) == 1 and accepts[0].return_ns is not None
    assert accepts[0].actor == "server"
    # The handler's calls were heard too, on the lane of the connection it served.
    assert {(s.lane, s.name) for s in spans} >= {("server 1", "recv()"), ("server 1", "send()")}


def test_connections_are_pruned_as_new_ones_come():
    with LoopbackServer(auto_accept=False) as server:
        for _ in range(threaded_server._PRUNE_AT + 10):
            client = connect(server.address)
            close(server.accept())
            close(client)
        assert len(server.connections) <= threaded_server._PRUNE_AT
