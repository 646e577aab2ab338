"""The teardown experiments on real loopback sockets: the delayed ACK of a FIN, simultaneous close.

The bounds come from the kernel's delayed-ACK rule (see handshake_lab.net.fin_wait_1): with no
data ever received the ACK waits for the next clock tick (at most 10 ms, HZ=100); after data
it waits TCP_DELACK_MIN (40 ms, minus at most one tick of rounding) and never more than
TCP_DELACK_MAX. The fastest of a few runs is asserted, so a late-scheduled poll cannot flake it.
"""

from __future__ import annotations

import json
import os

import pytest

from handshake_lab.capture import simultaneous_close as simultaneous
from handshake_lab.model.states import TcpState
from handshake_lab.net.fin_behind_full_window import close_behind_full_windows
from handshake_lab.net.fin_wait_1 import TCP_DELACK_MAX, TCP_DELACK_MIN, measure_fin_wait_1

pytestmark = pytest.mark.kernel

_ONE_TICK_AT_HZ_100 = 0.010


def test_a_fin_with_no_data_before_is_acknowledged_at_the_next_tick():
    timing = measure_fin_wait_1(after_request=False)
    assert timing.fastest < TCP_DELACK_MIN / 2, timing.as_text()
    assert set(timing.states_after) == {TcpState.FIN_WAIT_2}, timing.states_after


def test_a_fin_after_a_request_waits_for_the_delayed_ack_timer():
    timing = measure_fin_wait_1(after_request=True)
    low = TCP_DELACK_MIN - _ONE_TICK_AT_HZ_100
    assert low <= timing.fastest < TCP_DELACK_MAX, timing.as_text()
    assert set(timing.states_after) == {TcpState.FIN_WAIT_2}, timing.states_after


def test_bad_runs_are_refused():
    with pytest.raises(ValueError, match="runs"):
        measure_fin_wait_1(runs=0)


def test_simultaneous_close_passes_both_ends_through_closing_to_time_wait():
    result = simultaneous.simultaneous_close()
    if result.source == "recording":
        pytest.skip(f"no socket filters and no user namespaces here: {result.explanation}")
    for end in ("client", "server"):
        states = result.states_of(end)
        expected = [TcpState.FIN_WAIT_1, TcpState.CLOSING, TcpState.TIME_WAIT]
        assert states == expected, f"{end}: {states}\n{result.as_text()}"
    expected_source = "live" if os.geteuid() == 0 else "namespace"
    assert result.source == expected_source, result.explanation


def test_the_shipped_recording_shows_both_ends_closing():
    recorded = json.loads(simultaneous.RECORDING.read_text())
    result = simultaneous.SimultaneousClose.from_json(recorded["changes"], "recording", "")
    assert result.both_closing, result.as_text()
    assert recorded["kernel"] and recorded["recorded_on"], recorded
    assert result.states_of("server")[-1] is TcpState.TIME_WAIT, result.as_text()


def test_without_filters_or_namespace_the_recording_is_shown(monkeypatch):
    def refused():
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(simultaneous, "run_simultaneous_close", refused)
    monkeypatch.setattr(simultaneous, "_run_in_namespace", lambda: (None, "namespaces are off"))
    result = simultaneous.simultaneous_close()
    assert result.source == "recording" and "recording made by" in result.explanation
    assert result.both_closing, result.as_text()


def test_unprivileged_fins_behind_full_windows_give_one_closing_end():
    steps = close_behind_full_windows()
    seen = [(step.client, step.server) for step in steps]
    assert seen == [
        (TcpState.FIN_WAIT_1, TcpState.FIN_WAIT_1),
        (TcpState.CLOSING, TcpState.FIN_WAIT_2),
        (TcpState.TIME_WAIT, TcpState.TIME_WAIT),
    ], seen
