"""Notebook 07's exercise checker, run on a correct on_ready and on the usual mistakes."""

from __future__ import annotations

import selectors

import pytest

from handshake_lab.exercises.n07_many_clients import CHECK_CONNECTIONS, check
from handshake_lab.net.echo_servers import echo_on_ready

pytestmark = pytest.mark.kernel


solution = echo_on_ready  # the package's own server loop body is a correct answer


def echo_back(sock) -> bytes:
    """recv() and send back what came; b'' when the client has gone (closed or reset)."""
    try:
        data = sock.recv(4096)
    except ConnectionResetError:
        data = b""
    if data:
        sock.sendall(data)
    return data


def starter(key, selector):
    """The notebook's starter code: accepts, then forgets the connection."""
    sock = key.fileobj
    if key.data == "listener":
        connection, _ = sock.accept()  # noqa: F841 - the learner has not registered it yet


def fix_lines(feedback) -> list[str]:
    return [text for ok, text in feedback.lines if not ok]


def test_a_correct_on_ready_passes_every_check():
    feedback = check(solution)
    assert feedback.passed, str(feedback)
    assert f"all {CHECK_CONNECTIONS} short connections" in str(feedback)
    assert str(feedback).startswith("Your selectors echo server: all checks passed")


def test_the_starter_code_is_told_to_register_the_connection():
    feedback = check(starter)
    assert not feedback.passed
    (fix,) = fix_lines(feedback)
    assert "closed the connection without answering" in fix and "selector.register" in fix


def test_a_server_that_never_answers_is_told_to_recv_and_send():
    def accepts_only(key, selector):
        if key.data == "listener":
            connection, _ = key.fileobj.accept()
            connection.setblocking(False)
            selector.register(connection, selectors.EVENT_READ, "connection")

    feedback = check(accepts_only)
    assert "recv() from key.fileobj and send the bytes back" in fix_lines(feedback)[0]


def test_not_handling_the_reset_is_explained():
    def no_reset_handling(key, selector):
        sock = key.fileobj
        if key.data == "listener":
            solution(key, selector)
        elif data := sock.recv(4096):
            sock.sendall(data)
        else:
            selector.unregister(sock)
            sock.close()

    feedback = check(no_reset_handling)
    assert not feedback.passed
    assert any(
        "ConnectionResetError" in line and "SO_LINGER" in line for line in fix_lines(feedback)
    )


def test_a_blocking_recv_on_a_silent_client_is_caught():
    def reads_right_after_accept(key, selector):
        if key.data == "listener":
            connection, _ = key.fileobj.accept()  # blocking: Python's accept() default
            connection.settimeout(None)
            try:
                data = connection.recv(4096)  # waits for this one client: blocks the loop
                if data:
                    connection.sendall(data)
            except ConnectionResetError:
                pass
            connection.close()

    feedback = check(reads_right_after_accept)
    assert not feedback.passed
    assert "the second got no answer while the first sat silent" in str(feedback)


def test_connections_left_open_are_counted():
    def never_closes(key, selector):
        if key.data == "listener":
            solution(key, selector)
        elif not echo_back(key.fileobj):
            selector.modify(key.fileobj, selectors.EVENT_READ, "finished")  # kept, never closed

    def quiet(key, selector):  # the finished ones stay readable: ignore them
        if key.data != "finished":
            never_closes(key, selector)

    feedback = check(quiet)
    assert not feedback.passed
    (fix,) = fix_lines(feedback)
    assert "stayed open after their clients left" in fix


def test_closing_without_unregistering_is_counted():
    def forgets_unregister(key, selector):
        if key.data == "listener":
            solution(key, selector)
        elif not echo_back(key.fileobj):
            key.fileobj.close()

    feedback = check(forgets_unregister)
    # The closed socket's number comes back with the next accept(): register() then fails.
    assert any(
        "call selector.unregister(sock) before sock.close()" in line for line in fix_lines(feedback)
    )


def test_an_exception_in_on_ready_is_named():
    def typo(key, selector):
        raise NameError("name 'selctor' is not defined")

    feedback = check(typo)
    assert any(
        "on_ready raised NameError" in line and "on the listener" in line
        for line in fix_lines(feedback)
    )


def test_something_not_callable_is_refused():
    feedback = check("on_ready")
    assert fix_lines(feedback) == ["on_ready must be a function: def on_ready(key, selector): ..."]
