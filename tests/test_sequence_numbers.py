"""The handshake's sequence-number tables, and sampled states, on the shipped recordings."""

from __future__ import annotations

import dataclasses

import pytest

from handshake_lab.capture.evidence import state_at
from handshake_lab.capture.shipped import load_shipped_capture
from handshake_lab.model.sequence_numbers import ack_relations, handshake_of, sequence_table
from handshake_lab.model.states import TcpState

RECORDING = load_shipped_capture()


def test_handshake_of_picks_the_three_segments():
    syn, syn_ack, ack = handshake_of(RECORDING.segments)
    assert (syn.flags, syn_ack.flags, ack.flags) == ("SYN", "SYN+ACK", "ACK")
    assert syn_ack.src == syn.dst and ack.src == syn.src


@pytest.mark.parametrize(
    ("keep", "message"),
    [
        (lambda s: s.flags != "SYN", "no SYN"),
        (lambda s: s.flags != "SYN+ACK", r"no SYN\+ACK"),
        (lambda s: s.flags in ("SYN", "SYN+ACK"), "ACK was not captured"),
    ],
)
def test_handshake_of_says_what_is_missing(keep, message):
    with pytest.raises(ValueError, match=message):
        handshake_of([s for s in RECORDING.segments if keep(s)])


def test_tables_show_relative_numbers_from_zero():
    relative = sequence_table(RECORDING.segments, absolute=False).splitlines()
    assert [line.split() for line in relative[1:]] == [
        ["SYN", "client", "0", "-"],
        ["SYN+ACK", "server", "0", "1"],
        ["ACK", "client", "1", "1"],
    ]
    syn = RECORDING.segments[0]
    assert str(syn.seq) in sequence_table(RECORDING.segments)
    assert ack_relations(RECORDING.segments).count("True") == 3


def test_ack_relations_notice_a_wrong_ack():
    segments = list(RECORDING.segments)
    segments[1] = dataclasses.replace(segments[1], ack=segments[0].seq)
    assert ack_relations(segments).splitlines()[0].endswith("False")


def test_state_at_reads_the_slow_motion_samples():
    slow = load_shipped_capture(slow_motion=True)
    syn, syn_ack, ack = handshake_of(slow.segments)
    assert state_at(slow.states, "client", syn_ack.time) is TcpState.SYN_SENT
    assert state_at(slow.states, "server", ack.time) is TcpState.SYN_RECEIVED
    assert state_at(slow.states, "server", slow.states[-1][0]) is TcpState.ESTABLISHED
    assert state_at(slow.states, "client", syn.time - 1) is None
