"""The TCP model against the kernel: every order of calls up to a depth, and seeded random ones.

Each order runs on a real loopback connection and on `tcp_model.Connection` (see
tests/model_vs_kernel.py); after every call the kernel's settled states must equal the model's,
and with live capture (root) so must the segments on the wire. Settling waits, bounded, for
Linux's delayed ACK of a FIN (at most TCP_DELACK_MAX, 200 ms).
"""

from __future__ import annotations

import sys

import pytest
from model_vs_kernel import Duel, every_order, random_order

from handshake_lab.model.states import TcpState
from handshake_lab.model.tcp_model import Connection
from handshake_lab.model.tcp_rules import TcpEvent

pytestmark = [
    pytest.mark.kernel,
    pytest.mark.skipif(sys.platform != "linux", reason="the model follows Linux"),
]

DEPTH = 3
RANDOM_ORDERS = 150
RANDOM_LENGTH = 8


def _ids(orders):
    return [" ".join(str(call) for call in order) or "nothing" for order in orders]


@pytest.mark.parametrize("accepted", [True, False], ids=["accepted", "not-accepted"])
def test_every_order_up_to_a_depth(accepted):
    for order in every_order(DEPTH, accepted=accepted):
        with Duel(accepted=accepted) as duel:
            duel.run(order)


@pytest.mark.parametrize("first_seed", range(0, RANDOM_ORDERS, 25))
def test_seeded_random_orders(first_seed):
    for seed in range(first_seed, first_seed + 25):
        accepted, order = random_order(seed, RANDOM_LENGTH)
        with Duel(accepted=accepted) as duel:
            duel.run(order)


# -- The rules no order of plain calls reaches: the kernel's answers from the lab's experiments
# (live in a private namespace where the machine allows, else the lab's labelled recording).
def _server_and_client_after(model: Connection) -> tuple[TcpState, TcpState]:
    return model.server.state, model.client.state


def _distinct(states) -> list:
    return [state for i, state in enumerate(states) if i == 0 or state is not states[i - 1]]


@pytest.fixture(scope="module")
def queue_evidence():
    from handshake_lab.capture.listen_queue_evidence import listen_queue_experiments

    return listen_queue_experiments()


@pytest.mark.parametrize("abort_on_overflow", [0, 1])
def test_the_final_ack_meeting_a_full_accept_queue(queue_evidence, abort_on_overflow):
    kernel = queue_evidence.ack_overflow[abort_on_overflow]
    model = Connection(
        defer_accept=True, queue_full_at_ack=True, abort_on_overflow=bool(abort_on_overflow)
    )
    model.listen()
    model.connect()
    model.send("client", 3)
    server, client = _server_and_client_after(model)
    assert kernel.client_state is client, (queue_evidence.explanation, kernel)
    assert (kernel.server_side or TcpState.CLOSED) is server, (queue_evidence.explanation, kernel)
    sent_rst = any(segment.flags == "RST" for segment in model.wire)
    assert (kernel.count("server", "RST") > 0) is sent_rst, kernel.wire
    # Either way a SYN that meets the full queue is dropped, not reset.
    late = Connection(drop_next_syn=True)
    late.listen()
    late.connect()
    assert (kernel.late_syn_state, kernel.late_syn_reset) == (late.client.state, False)


@pytest.mark.parametrize("syncookies", [0, 1])
def test_a_full_syn_queue(queue_evidence, syncookies):
    kernel = queue_evidence.syn_queue[syncookies]
    held = kernel.backlog + 1  # the SYN queue is full once it holds more than the backlog
    assert kernel.server_sides_syn_received == held, kernel
    beyond = Connection(defer_accept=True, syn_queue_full=True, syncookies=bool(syncookies))
    beyond.listen()
    beyond.connect()
    extra = kernel.clients - held
    if beyond.server.state is TcpState.ESTABLISHED:
        assert (kernel.server_sides_established, kernel.clients_syn_sent) == (extra, 0), kernel
    else:
        assert beyond.client.state is TcpState.SYN_SENT
        assert (kernel.server_sides_established, kernel.clients_syn_sent) == (0, extra), kernel


def test_a_simultaneous_close():
    from handshake_lab.capture.simultaneous_close import simultaneous_close

    kernel = simultaneous_close()
    model = Connection()
    model.listen()
    model.connect()
    model.accept()
    model.apply("client", TcpEvent.SHUTDOWN, deliver=False)
    model.apply("server", TcpEvent.SHUTDOWN, deliver=False)
    model.settle()
    modelled = {
        "client": [TcpState.FIN_WAIT_1, *(step.client_state for step in model.ladder[3:])],
        "server": [TcpState.FIN_WAIT_1, *(step.server_state for step in model.ladder[3:])],
    }
    for end in ("client", "server"):
        seen = [state for state in kernel.states_of(end) if state is not None]
        seen = _distinct(seen[seen.index(TcpState.FIN_WAIT_1) :])
        assert seen == _distinct(modelled[end]), (end, kernel.as_text())
