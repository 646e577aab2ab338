"""The checker of notebook 04's exercise: the learner's socket code, judged by the kernel."""

from __future__ import annotations

import inspect
import socket
import threading

import pytest

from handshake_lab.exercises import n04_backlog

pytestmark = pytest.mark.kernel


@pytest.fixture(autouse=True)
def fresh_hints():
    n04_backlog.reset_hints()
    yield
    n04_backlog.reset_hints()


def solution(address, backlog):
    clients = []
    for _ in range(backlog + 1):
        clients.append(socket.create_connection(address))
    return clients


def nothing_yet(address, backlog):  # the notebook's starter
    clients = []
    return clients


def one_short(address, backlog):  # the common belief: listen(N) holds N
    return [socket.create_connection(address) for _ in range(backlog)]


def one_too_many(address, backlog):  # the last connect() meets a full queue and blocks
    return [socket.create_connection(address) for _ in range(backlog + 2)]


def closed_by_with(address, backlog):
    clients = []
    for _ in range(backlog + 1):
        with socket.create_connection(address) as client:
            clients.append(client)
    return clients


def never_connected(address, backlog):
    return [socket.socket() for _ in range(backlog + 1)]


def too_many_without_waiting(address, backlog):
    clients = []
    for _ in range(backlog + 2):
        client = socket.socket()
        client.setblocking(False)
        client.connect_ex(address)
        clients.append(client)
    return clients


def forgot_return(address, backlog):
    clients = [socket.create_connection(address) for _ in range(backlog + 1)]
    assert clients


def kept_one_back(address, backlog):
    clients = [socket.create_connection(address) for _ in range(backlog + 1)]
    return clients[1:]


def raises(address, backlog):
    return [socket.create_connection(("127.0.0.1", 0))]


MISTAKES = {
    nothing_yet: "not full",
    one_short: "not full",
    one_too_many: "blocked",
    closed_by_with: "closed",
    never_connected: "not connected",
    too_many_without_waiting: "not connected",
    forgot_return: "wrong type",
    kept_one_back: "not returned",
    raises: "raised",
}


def hints_of(feedback) -> list[str]:
    return [text for ok, text in feedback.lines if not ok]


def test_a_correct_solution_passes_every_backlog():
    feedback = n04_backlog.check(solution)
    assert feedback.passed, str(feedback)
    assert len(feedback.lines) == len(n04_backlog.BACKLOGS)
    for backlog, (_, text) in zip(n04_backlog.BACKLOGS, feedback.lines, strict=True):
        assert f"listen({backlog}): the kernel's accept queue held {backlog + 1}, full" in text
        assert "SYN was dropped" in text


@pytest.mark.parametrize("mistake", list(MISTAKES), ids=lambda function: function.__name__)
def test_each_typical_mistake_gets_its_first_hint(mistake):
    feedback = n04_backlog.check(mistake)
    assert not feedback.passed and "not yet" in str(feedback)
    first_hint = n04_backlog.HINTS[MISTAKES[mistake]][0].split("{")[0]
    for hint in hints_of(feedback):
        assert first_hint in hint, str(feedback)


def test_the_feedback_says_what_the_kernel_measured():
    short = n04_backlog.check(one_short)
    assert "listen(2): the kernel's accept queue held 2; one more client still got in" in str(short)
    blocked = n04_backlog.check(one_too_many)
    assert "listen(2): the kernel's accept queue held 3" in str(blocked)
    assert "did not return within" in str(blocked)
    syn_sent = n04_backlog.check(too_many_without_waiting)
    assert "SYN-SENT" in str(syn_sent)


def test_repeated_failures_get_more_specific_hints_then_stay_at_the_last():
    hints = [hints_of(n04_backlog.check(one_short))[0] for _ in range(4)]
    levels = n04_backlog.HINTS["not full"]
    for hint, level in zip(hints, [0, 1, 2, 2], strict=True):
        assert levels[level].split("{")[0] in hint, hint
    assert len(set(hints[:3])) == 3


def test_each_mistake_counts_its_own_tries():
    n04_backlog.check(one_short)
    n04_backlog.check(one_short)
    first_closed_hint = n04_backlog.HINTS["closed"][0].format(count=1)
    assert first_closed_hint in hints_of(n04_backlog.check(closed_by_with))[0]


def test_no_hint_contains_the_solution_code():
    lines = [line.strip() for line in inspect.getsource(solution).splitlines()[1:]]
    fragments = [line for line in lines if line] + ["backlog + 1", "backlog+1", "range("]
    texts = []
    for mistake in MISTAKES:
        for _ in range(3):  # every level of its hints
            texts += hints_of(n04_backlog.check(mistake))
    texts += [hint for hints in n04_backlog.HINTS.values() for hint in hints]
    assert texts
    for text in texts:
        for fragment in fragments:
            assert fragment not in text, (fragment, text)


def test_nothing_is_left_open_after_any_check():
    threads_before = set(threading.enumerate())
    for mistake in [solution, *MISTAKES]:
        n04_backlog.check(mistake)
    assert set(threading.enumerate()) <= threads_before
    # the autouse no_leaks fixture checks the sockets and file descriptors


def test_a_check_restores_the_default_socket_timeout():
    before = socket.getdefaulttimeout()
    n04_backlog.check(one_too_many)
    assert socket.getdefaulttimeout() == before


def test_not_a_function_is_told_what_to_pass():
    feedback = n04_backlog.check(3)
    assert not feedback.passed and "pass your function itself" in str(feedback)


def test_one_more_syn_is_dropped_only_by_a_full_queue():
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        address = listener.getsockname()
        assert not n04_backlog.one_more_syn_dropped(address)  # it took the one place
        assert n04_backlog.one_more_syn_dropped(address)
