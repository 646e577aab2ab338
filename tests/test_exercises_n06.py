"""The checker of notebook 06's exercise and its kernel readers, on real loopback sockets."""

from __future__ import annotations

import socket
import struct

import pytest

from handshake_lab.exercises import n06_closing
from handshake_lab.net.clients import close

pytestmark = pytest.mark.kernel


def _linger_zero_then_close(sock):
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


@pytest.mark.parametrize(
    "solution",
    [
        _linger_zero_then_close,
        lambda sock: close(sock, reset=True),
    ],
    ids=["setsockopt", "helper"],
)
def test_a_reset_close_passes(solution):
    feedback = n06_closing.check(solution)
    assert feedback.passed, str(feedback)


def test_a_plain_close_is_told_about_time_wait():
    feedback = n06_closing.check(lambda sock: sock.close())
    assert not feedback.passed
    text = str(feedback)
    assert "TIME-WAIT" in text and "SO_LINGER" in text, text


def test_forgetting_to_close_is_named():
    feedback = n06_closing.check(lambda sock: None)
    assert not feedback.passed
    assert "still open" in str(feedback), str(feedback)


def test_a_learner_exception_becomes_feedback():
    def broken(sock):
        raise RuntimeError("oops")

    feedback = n06_closing.check(broken)
    assert not feedback.passed and "RuntimeError: oops" in str(feedback)
    assert not n06_closing.check("close").passed
