"""What each TCP option of a SYN is for: named from the Segment's own options (pure)."""

from __future__ import annotations

import pytest

from handshake_lab.capture.shipped import load_shipped_capture
from handshake_lab.model.packets import Segment
from handshake_lab.model.tcp_options import (
    OPTION_MEANINGS,
    check_option_answers,
    describe_options,
    options_table,
    options_text,
)

SYN = Segment(
    0.0,
    ("127.0.0.1", 40000),
    ("127.0.0.1", 5000),
    "SYN",
    1234,
    0,
    options=(("MSS", 65495), ("SACK_PERM", True), ("TS", (77, 0)), ("NOP", None), ("WS", 7)),
)


def test_each_option_is_named_with_its_value_and_purpose_in_wire_order():
    described = describe_options(SYN)
    assert [option.short for option in described] == [
        "MSS 65495",
        "SACK_PERM",
        "TS val=77 ecr=0",
        "NOP",
        "WS 7 (x128)",
    ]
    assert [option.meaning.kind for option in described] == [2, 4, 8, 1, 3]
    assert all(option.meaning.purpose for option in described)
    assert described[0].line().startswith("MSS 65495: maximum segment size (RFC 9293 3.7.1): ")


@pytest.mark.parametrize(
    ("name", "defined_in"),
    [
        ("MSS", "RFC 9293"),
        ("SACK_PERM", "RFC 2018"),
        ("TS", "RFC 7323"),
        ("WS", "RFC 7323"),
        ("NOP", "RFC 9293"),
        ("EOL", "RFC 9293"),
        ("SACK", "RFC 2018"),
    ],
)
def test_every_option_kind_cites_where_it_is_defined(name, defined_in):
    assert OPTION_MEANINGS[name].defined_in.startswith(defined_in)


def test_short_lines_and_a_table_for_printing():
    assert options_text(SYN, width=30) == [
        "MSS 65495, SACK_PERM",
        "TS val=77 ecr=0, NOP",
        "WS 7 (x128)",
    ]
    table = options_table([SYN, SYN])
    assert (
        table.count("SYN from port 40000, seq=1234, window 65535, options:") == 2
        and table.count("\n  WS 7 (x128): ") == 2
    )
    bare = Segment(0.0, ("127.0.0.1", 1), ("127.0.0.1", 2), "ACK", 1, 1)
    assert options_table(bare) == "ACK from port 1, seq=1, window 65535, options:\n  (no options)"
    unknown = Segment(
        0.0, ("127.0.0.1", 1), ("127.0.0.1", 2), "SYN", 1, 0, options=(("kind-30", b"\x01"),)
    )
    assert describe_options(unknown)[0].line() == "kind-30 01: an option this lab does not describe"
    with pytest.raises(TypeError, match="needs a Segment"):
        describe_options("SYN")


def test_a_real_syn_and_syn_ack_are_described_completely():
    syn, syn_ack = load_shipped_capture().segments[:2]
    for segment in (syn, syn_ack):
        names = [option.name for option in describe_options(segment)]
        assert names == [name for name, _ in segment.options]
        assert all(name in OPTION_MEANINGS for name in names), names


def test_the_syn_ack_answers_only_what_the_syn_offered_and_echoes_its_timestamp():
    syn, syn_ack = load_shipped_capture().segments[:2]
    assert check_option_answers(syn, syn_ack) == []
    bare_syn = Segment(0.0, syn.src, syn.dst, "SYN", syn.seq, 0, options=(("MSS", 1460),))
    assert check_option_answers(bare_syn, syn_ack) == [
        "the SYN+ACK carries WS, which the SYN did not offer",
        "the SYN+ACK carries TS, which the SYN did not offer",
        "the SYN+ACK carries SACK_PERM, which the SYN did not offer",
    ]
    wrong_echo = Segment(0.0, syn.dst, syn.src, "SYN+ACK", 1, 1, options=(("TS", (5, 6)),))
    odd_syn = Segment(0.0, syn.src, syn.dst, "SYN", 1, 0, options=(("TS", (9, 3)),))
    assert check_option_answers(odd_syn, wrong_echo) == [
        "the SYN's timestamp echo is 3, not 0",
        "the SYN+ACK echoes 6, not the SYN's val 9",
    ]
    with pytest.raises(ValueError, match="give a SYN and its SYN\\+ACK"):
        check_option_answers(syn_ack, syn)
