"""Notebook 06's exercise: a graceful close, judged by the kernel and (where allowed) the wire."""

from __future__ import annotations

import re
import socket
import struct

import pytest

from handshake_lab.exercises import n06_closing
from handshake_lab.exercises.attempts import Attempts

pytestmark = pytest.mark.kernel


def _read_to_end(sock) -> bytes:
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    return data


def graceful(sock):
    sock.shutdown(socket.SHUT_WR)
    data = _read_to_end(sock)
    sock.close()
    return data


def starter(sock):
    """The notebook's starter code, as stored."""
    sock.close()


def one_recv(sock):
    sock.shutdown(socket.SHUT_WR)
    data = sock.recv(4096)
    sock.close()
    return data


def linger_zero(sock):
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


def both_directions(sock):
    sock.shutdown(socket.SHUT_RDWR)
    data = _read_to_end(sock)
    sock.close()
    return data


def never_closes(sock):
    sock.shutdown(socket.SHUT_WR)
    return _read_to_end(sock)


def never_shuts_down(sock):
    data = _read_to_end(sock)
    sock.close()
    return data


def fix_lines(feedback) -> list[str]:
    return [text for ok, text in feedback.lines if not ok]


def test_a_graceful_close_passes_and_ends_in_time_wait():
    feedback = n06_closing.check(graceful, Attempts())
    assert feedback.passed, str(feedback)
    text = str(feedback)
    assert "CLOSE-WAIT" in text and "TIME-WAIT" in text and "no reset" in text, text


MISTAKES = [
    # (the learner's function, words of its first hint, whether the server saw a reset)
    (starter, "already closed", True),
    (one_recv, "4,096 of the reply's 300,000 bytes", True),
    (linger_zero, "not a FIN", True),
    (both_directions, "your own kernel answered it with RST", True),
    (never_closes, "still open", False),
]


@pytest.mark.parametrize(
    ("finish", "hint", "reset"), MISTAKES, ids=lambda m: getattr(m, "__name__", "")
)
def test_each_typical_mistake_gets_its_hint(finish, hint, reset):
    feedback = n06_closing.check(finish, Attempts())
    assert not feedback.passed
    assert hint in fix_lines(feedback)[0], str(feedback)
    assert any("got a reset" in line for line in fix_lines(feedback)) is reset, str(feedback)


def test_a_reset_close_is_a_failure_that_says_why_it_loses_data():
    (reset_first, *_) = fix_lines(n06_closing.check(linger_zero, Attempts()))
    assert "ConnectionResetError" in reset_first and "throws away" in reset_first


def test_waiting_for_the_server_without_a_fin_is_named_a_deadlock_and_gets_more_specific():
    attempts = Attempts()
    first = fix_lines(n06_closing.check(never_shuts_down, attempts))
    second = fix_lines(n06_closing.check(never_shuts_down, attempts))
    assert first[0].startswith("finish(sock) raised TimeoutError") and "(hint 1 of 3)" in first[0]
    assert "(hint 2 of 3)" in second[0] and "recv() returns b''" in second[0]


def test_repeated_failures_climb_the_ladder_and_no_hint_shows_the_solution():
    attempts = Attempts()
    seen = [fix_lines(n06_closing.check(starter, attempts))[0] for _ in range(4)]
    assert [f"(hint {n} of 3)" in line for n, line in zip((1, 2, 3, 3), seen, strict=True)] == [
        True
    ] * 4
    assert len(set(seen[:3])) == 3
    for finish, _, _ in MISTAKES:
        for _ in range(3):
            for line in fix_lines(n06_closing.check(finish, attempts)):
                assert "SHUT_WR" not in line and not re.search(r"while .*recv|shutdown\(", line), (
                    line
                )


def test_a_learner_exception_and_a_non_function_become_feedback():
    def broken(sock):
        raise RuntimeError("oops")

    assert "RuntimeError: oops" in str(n06_closing.check(broken, Attempts()))
    assert fix_lines(n06_closing.check("close")) == ["pass your function itself: check(finish)"]


def test_returning_something_else_than_bytes_is_named():
    def returns_text(sock):
        return graceful(sock).decode()

    feedback = n06_closing.check(returns_text, Attempts())
    assert "return the bytes you read" in fix_lines(feedback)[0], str(feedback)
