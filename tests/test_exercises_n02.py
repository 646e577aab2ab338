"""Notebook 02's checker: the right function passes; the usual mistakes get their own fix."""

from __future__ import annotations

import pytest

from handshake_lab.exercises import n02_handshake
from handshake_lab.kernel.lookup import tcp_sockets
from handshake_lab.kernel.proc_tcp import find_rows

pytestmark = pytest.mark.kernel


def right(server_address, client_address):
    [row] = find_rows(tcp_sockets(server_address[1]), server_address, client_address)
    return row.state


def client_side(server_address, client_address):  # the notebook's starter
    rows = tcp_sockets(server_address[1])
    return find_rows(rows, local=client_address, remote=server_address)[0].state


def listener(server_address, client_address):
    [row] = find_rows(tcp_sockets(server_address[1]), server_address, ("0.0.0.0", 0))
    return row.state


def as_text(server_address, client_address):
    return right(server_address, client_address).linux_name


def whole_row(server_address, client_address):
    return find_rows(tcp_sockets(server_address[1]), server_address, client_address)[0]


def forgot_return(server_address, client_address):
    right(server_address, client_address)


def no_match(server_address, client_address):
    [row] = find_rows(tcp_sockets(server_address[1]), server_address, server_address)
    return row.state


def failing(feedback):
    return [text for ok, text in feedback.lines if not ok]


def test_the_right_function_passes_both_cases():
    feedback = n02_handshake.check(right)
    assert feedback.passed, str(feedback)
    assert [text for _, text in feedback.lines] == [
        "a fresh connection: you found ESTABLISHED, as the kernel says",
        "a connection whose client has closed: you found CLOSE-WAIT (CLOSE_WAIT), "
        "as the kernel says",
    ]


def test_the_starter_is_caught_finding_the_clients_side():
    feedback = n02_handshake.check(client_side)
    assert [ok for ok, _ in feedback.lines] == [True, False]
    assert failing(feedback) == [
        "a connection whose client has closed: you found FIN-WAIT-2, the client's side; the "
        "server's side, CLOSE-WAIT (CLOSE_WAIT), has local = server_address, "
        "remote = client_address"
    ]


@pytest.mark.parametrize(
    "function, expected",
    [
        (listener, "LISTEN is the listener's row"),
        (as_text, "returned the string 'ESTABLISHED'"),
        (whole_row, "returned the whole row"),
        (forgot_return, "returned None"),
        (no_match, "raised ValueError"),
    ],
)
def test_each_mistake_gets_its_own_fix(function, expected):
    feedback = n02_handshake.check(function)
    assert not feedback.passed
    assert expected in failing(feedback)[0]


def test_not_a_function_is_explained():
    feedback = n02_handshake.check("server_side_state")
    assert failing(feedback) == ["pass your function itself: check(server_side_state)"]
