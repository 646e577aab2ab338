"""Notebook 05's small-segment exercise, judged by the server's kernel (TCP_SAVED_SYN)."""

from __future__ import annotations

import socket

import pytest

from handshake_lab.exercises.attempts import Attempts
from handshake_lab.exercises.n05_small_segments import WANTED_MSS, check

pytestmark = pytest.mark.kernel


def connected(address, mss=None, *, before=True):
    client = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    client.settimeout(5)
    if mss is not None and before:
        client.setsockopt(socket.IPPROTO_TCP, socket.TCP_MAXSEG, mss)
    client.connect(address)
    if mss is not None and not before:
        client.setsockopt(socket.IPPROTO_TCP, socket.TCP_MAXSEG, mss)
    return client


def test_a_syn_asking_for_the_wanted_size_passes_with_the_kernels_own_figure():
    feedback = check(lambda address: connected(address, WANTED_MSS), Attempts())
    assert feedback.passed, feedback
    assert f"MSS {WANTED_MSS}" in str(feedback) and "TCP_MAXSEG" in str(feedback)


def test_setting_the_option_after_connect_is_too_late_and_the_hints_grow():
    attempts = Attempts()
    late = [check(lambda a: connected(a, WANTED_MSS, before=False), attempts) for _ in range(3)]
    texts = [str(feedback) for feedback in late]
    assert not any(feedback.passed for feedback in late)
    assert "(hint 1 of 3)" in texts[0] and "(hint 3 of 3)" in texts[2], texts
    assert "before connect()" in texts[1]


def test_another_size_is_named_without_the_answer():
    feedback = check(lambda address: connected(address, 1040), Attempts())
    assert not feedback.passed and "MSS 1040" in str(feedback)


@pytest.mark.parametrize(
    ("solution", "says"),
    [
        (lambda address: socket.create_connection(address, 5).close(), "not what connect()"),
        (lambda address: socket.socket(), "not connected"),
        (lambda address: 1 / 0, "ZeroDivisionError"),
    ],
)
def test_each_mistake_gets_its_own_line(solution, says):
    feedback = check(solution, Attempts())
    assert not feedback.passed and says in str(feedback), feedback


def test_no_hint_holds_the_solution():
    attempts = Attempts()
    texts = [
        str(check(lambda a: connected(a, WANTED_MSS, before=False), attempts)) for _ in range(4)
    ]
    texts += [str(check(lambda a: connected(a, 1040), attempts)) for _ in range(3)]
    for text in texts:
        assert "TCP_MAXSEG" not in text and "setsockopt" not in text, text
