"""Notebook 01's echo-handler checker: a right handler passes; each usual mistake gets its fix."""

from __future__ import annotations

import socket

import pytest

from handshake_lab.exercises import n01_echo
from handshake_lab.loopback import LoopbackServer, close, connect, receive, send
from handshake_lab.procnet import tcp_sockets

pytestmark = pytest.mark.kernel


def right_echo(conn):
    while data := conn.recv(4096):
        conn.sendall(data)


def upper_once(conn):  # the notebook's starter
    data = conn.recv(1024)
    conn.sendall(data.upper())


def answers_once(conn):
    conn.sendall(conn.recv(1024))


def never_stops(conn):
    while True:
        data = conn.recv(1024)
        conn.sendall(data)


def decodes(conn):
    while data := conn.recv(4096):
        conn.sendall(data.decode().encode())


def raises(conn):
    conn.recv(10)
    raise ZeroDivisionError("handler bug")


def silent(conn):
    conn.recv(1024)


def waits_for_everything(conn):
    chunks = []
    while data := conn.recv(4096):
        chunks.append(data)
    conn.sendall(b"".join(chunks))


def failing_lines(feedback):
    return [text for ok, text in feedback.lines if not ok]


def test_a_right_echo_handler_passes_every_check():
    feedback = n01_echo.check(right_echo)
    assert feedback.passed, str(feedback)
    assert len(feedback.lines) == 5
    assert "all checks passed" in str(feedback)


def test_the_starter_is_told_what_it_sent_back():
    feedback = n01_echo.check(upper_once)
    assert not feedback.passed
    assert failing_lines(feedback) == [
        "it sent back b'HELLO' instead of b'hello': send back exactly the bytes recv() returned"]


def test_a_handler_that_returns_after_one_message_is_told_to_loop():
    feedback = n01_echo.check(answers_once)
    [problem] = failing_lines(feedback)
    assert "answered the first message and then returned" in problem


def test_a_handler_that_never_returns_is_stopped_and_told_to_break():
    feedback = n01_echo.check(never_stops)
    [problem] = failing_lines(feedback)
    assert "still running" in problem and "if not data: break" in problem


def test_a_handler_that_decodes_is_told_it_raised_unicode_decode_error():
    feedback = n01_echo.check(decodes)
    [problem] = failing_lines(feedback)
    assert problem.startswith("your handler raised UnicodeDecodeError")
    assert "without decoding" in problem


def test_an_exception_is_named():
    feedback = n01_echo.check(raises)
    [problem] = failing_lines(feedback)
    assert problem == "your handler raised ZeroDivisionError: handler bug"


def test_a_handler_that_sends_nothing_is_told_so():
    feedback = n01_echo.check(silent)
    [problem] = failing_lines(feedback)
    assert "closed before anything came back" in problem


def test_a_handler_that_waits_for_the_whole_stream_is_told_to_answer_each_piece():
    feedback = n01_echo.check(waits_for_everything)
    [problem] = failing_lines(feedback)
    assert problem.startswith("nothing came back within")


@pytest.mark.parametrize("handler, expected", [
    ("my_echo", "check(my_echo)"),
    (lambda: None, "exactly one argument"),
    (lambda a, b: None, "exactly one argument"),
])
def test_a_wrong_argument_is_explained_without_running_anything(handler, expected):
    feedback = n01_echo.check(handler)
    [problem] = failing_lines(feedback)
    assert expected in problem


def test_connection_table_names_each_row_in_a_fixed_order():
    with LoopbackServer() as server:
        client = connect(server.address)
        send(client, b"x")
        assert receive(client) == b"x"
        client_address = client.getsockname()
        table = n01_echo.connection_table(tcp_sockets(server.port), server.address,
                                          client_address)
        close(client)
    lines = table.splitlines()
    assert [line.split()[0] for line in lines[1:]] == ["listener", "client", "server"]
    assert lines[1].split()[3] == "LISTEN" and lines[3].split()[-1] == "yes"
    assert all(" ESTABLISHED " in line for line in lines[2:])
    assert f"127.0.0.1:{client_address[1]}" in lines[2]


def test_nothing_is_left_open_after_a_check_on_a_stuck_handler():
    n01_echo.check(never_stops)
    # the autouse no_leaks fixture fails this test if a thread or socket survived
    with socket.socket() as probe:
        assert probe.fileno() >= 0
