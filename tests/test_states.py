"""TcpState: Linux codes, RFC 9293 names and Linux names, and every spelling a learner meets."""

import pytest

from handshake_lab.model.states import TcpState

TABLE = [
    # code, RFC 9293 name, Linux name
    (1, "ESTABLISHED", "ESTABLISHED"),
    (2, "SYN-SENT", "SYN_SENT"),
    (3, "SYN-RECEIVED", "SYN_RECV"),
    (4, "FIN-WAIT-1", "FIN_WAIT1"),
    (5, "FIN-WAIT-2", "FIN_WAIT2"),
    (6, "TIME-WAIT", "TIME_WAIT"),
    (7, "CLOSED", "CLOSE"),
    (8, "CLOSE-WAIT", "CLOSE_WAIT"),
    (9, "LAST-ACK", "LAST_ACK"),
    (10, "LISTEN", "LISTEN"),
    (11, "CLOSING", "CLOSING"),
]


@pytest.mark.parametrize("code, rfc_name, linux_name", TABLE)
def test_every_state_has_its_code_and_both_names(code, rfc_name, linux_name):
    state = TcpState.from_code(code)
    assert (state.code, state.rfc_name, state.linux_name) == (code, rfc_name, linux_name)
    assert TcpState.from_name(rfc_name) is state
    assert TcpState.from_name(linux_name) is state
    assert TcpState.from_name(state.name.lower()) is state
    assert str(state) == rfc_name


@pytest.mark.parametrize(
    ("state", "shown"),
    [
        (TcpState.SYN_RECEIVED, "SYN-RECEIVED (SYN_RECV)"),
        (TcpState.CLOSE_WAIT, "CLOSE-WAIT (CLOSE_WAIT)"),
        (TcpState.CLOSED, "CLOSED (CLOSE)"),
        (TcpState.LISTEN, "LISTEN"),
        (TcpState.ESTABLISHED, "ESTABLISHED"),
    ],
)
def test_display_name_adds_linux_name_only_where_it_is_spelt_differently(state, shown):
    assert state.display_name == shown


def test_display_name_always_starts_with_the_rfc_name():
    for state in TcpState:
        assert state.display_name.startswith(state.rfc_name)
        assert state.linux_name in state.display_name


def test_the_table_covers_every_state():
    assert len(TABLE) == len(TcpState)


@pytest.mark.parametrize("code", [0, 12, 255])
def test_unknown_codes_are_refused(code):
    with pytest.raises(ValueError, match="not a Linux TCP state code"):
        TcpState.from_code(code)


def test_unknown_names_are_refused_with_the_choices():
    with pytest.raises(ValueError, match="ESTABLISHED"):
        TcpState.from_name("HALF_OPEN")
