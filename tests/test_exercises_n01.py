"""Notebook 01's echo-handler checker: a right handler passes; each usual mistake gets its fix."""

from __future__ import annotations

import socket

import pytest

from handshake_lab.exercises import n01_echo

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
        "it sent back b'HELLO' instead of b'hello': send back exactly the bytes recv() returned"
    ]


@pytest.mark.parametrize(
    "handler, expected",
    [
        (answers_once, ["answered the first message and then returned"]),
        (never_stops, ["still running", "if not data: break"]),
        (decodes, ["your handler raised UnicodeDecodeError", "without decoding"]),
        (raises, ["your handler raised ZeroDivisionError: handler bug"]),
        (silent, ["closed before anything came back"]),
        (waits_for_everything, ["nothing came back within"]),
    ],
    ids=lambda value: getattr(value, "__name__", None),
)
def test_each_mistake_gets_one_line_saying_what_to_fix(handler, expected):
    feedback = n01_echo.check(handler)
    [problem] = failing_lines(feedback)
    assert all(part in problem for part in expected), problem


@pytest.mark.parametrize(
    "handler, expected",
    [
        ("my_echo", "check(my_echo)"),
        (lambda: None, "exactly one argument"),
        (lambda a, b: None, "exactly one argument"),
    ],
)
def test_a_wrong_argument_is_explained_without_running_anything(handler, expected):
    feedback = n01_echo.check(handler)
    [problem] = failing_lines(feedback)
    assert expected in problem


def test_nothing_is_left_open_after_a_check_on_a_stuck_handler():
    n01_echo.check(never_stops)
    # the autouse no_leaks fixture fails this test if a thread or socket survived
    with socket.socket() as probe:
        assert probe.fileno() >= 0
