"""What each TCP option a SYN or SYN+ACK carries is for, in one line each, named from a Segment.

A SYN offers the options its sender can use and the SYN+ACK answers with those the other end
accepts: MSS (RFC 9293 section 3.7.1), window scale and timestamps (RFC 7323), SACK permitted
(RFC 2018), and NOP/EOL, the one-byte padding of RFC 9293 section 3.1. Linux writes them in
``tcp_syn_options`` / ``tcp_synack_options`` (net/ipv4/tcp_output.c): the SYN+ACK always carries
an MSS, and window scale, timestamps and SACK permitted only if the SYN offered them (RFC 7323
requires that for the first two); its timestamp echoes the SYN's (``check_option_answers``).
Rules: pure (a Segment in, text out); the option names are the ones ``packets`` decodes to.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from .packets import Segment

__all__ = [
    "OPTION_MEANINGS",
    "DescribedOption",
    "OptionMeaning",
    "check_option_answers",
    "describe_options",
    "options_table",
    "options_text",
]


@dataclass(frozen=True)
class OptionMeaning:
    """One option kind: its name in a Segment, its kind number, where it is defined, its use."""

    name: str
    kind: int
    title: str
    defined_in: str
    purpose: str


OPTION_MEANINGS = {
    meaning.name: meaning
    for meaning in (
        OptionMeaning(
            "MSS",
            2,
            "maximum segment size",
            "RFC 9293 3.7.1",
            "the most data bytes this end will take in one segment (only in SYN and SYN+ACK)",
        ),
        OptionMeaning(
            "SACK_PERM",
            4,
            "SACK permitted",
            "RFC 2018",
            "this end can take selective ACKs (SACK options): after a loss the other end can "
            "say which blocks arrived, so only the missing ones need be sent again (SYN, SYN+ACK)",
        ),
        OptionMeaning(
            "TS",
            8,
            "timestamps",
            "RFC 7323",
            "val is the sender's timestamp clock, ecr echoes the last val received (0 in a "
            "SYN): they time round trips and reject old segments once seq numbers wrap (PAWS)",
        ),
        OptionMeaning(
            "WS",
            3,
            "window scale",
            "RFC 7323",
            "the windows this end sends later count in units of 2**shift bytes, so they can "
            "pass 65,535; used only if both SYNs carry it, and never in a SYN's own window",
        ),
        OptionMeaning(
            "NOP",
            1,
            "no operation",
            "RFC 9293 3.1",
            "one byte of padding, so that the next option starts on a 4-byte boundary",
        ),
        OptionMeaning(
            "EOL",
            0,
            "end of option list",
            "RFC 9293 3.1",
            "marks the end of the options when they stop short of the header's end",
        ),
        OptionMeaning(
            "SACK",
            5,
            "selective acknowledgement",
            "RFC 2018",
            "blocks of data received beyond a gap (never in a SYN)",
        ),
    )
}


@dataclass(frozen=True)
class DescribedOption:
    """One option of one segment: its value as text and what the option is for."""

    name: str
    value_text: str
    meaning: OptionMeaning | None

    @property
    def short(self) -> str:
        """'MSS 65495', 'SACK_PERM', 'NOP' ...: the option and its value, compactly."""
        return f"{self.name} {self.value_text}" if self.value_text else self.name

    def line(self) -> str:
        if self.meaning is None:
            return f"{self.short}: an option this lab does not describe"
        meaning = self.meaning
        return f"{self.short}: {meaning.title} ({meaning.defined_in}): {meaning.purpose}"


def _value_text(name: str, value: object) -> str:
    if name == "MSS":
        return f"{value}"
    if name == "WS":
        return f"{value} (x{2**value})"
    if name == "TS":
        tsval, tsecr = value
        return f"val={tsval} ecr={tsecr}"
    if name == "SACK":
        return " ".join(f"{left}-{right}" for left, right in value)
    if name.startswith("kind-"):
        return bytes(value).hex()
    return ""


def describe_options(segment: Segment) -> list[DescribedOption]:
    """The segment's options in wire order, each with its value and what it is for."""
    if not isinstance(segment, Segment):
        raise TypeError(f"describe_options needs a Segment, got {type(segment).__name__}")
    return [
        DescribedOption(name, _value_text(name, value), OPTION_MEANINGS.get(name))
        for name, value in segment.options
    ]


def options_text(segment: Segment, *, width: int = 44) -> list[str]:
    """The options as short items ('MSS 65495', 'WS 7 (x128)'), joined into lines of ~width."""
    lines: list[str] = []
    for item in (option.short for option in describe_options(segment)):
        if lines and len(lines[-1]) + 2 + len(item) <= width:
            lines[-1] += ", " + item
        else:
            lines.append(item)
    return lines


def options_table(segments: Iterable[Segment] | Segment) -> str:
    """One line per option of each segment: its value and what it is for, for printing."""
    segments = [segments] if isinstance(segments, Segment) else list(segments)
    blocks = []
    for segment in segments:
        header = (
            f"{segment.flags} from port {segment.src_port}, seq={segment.seq}, "
            f"window {segment.window}, options:"
        )
        options = describe_options(segment)
        lines = [f"  {option.line()}" for option in options] or ["  (no options)"]
        blocks.append("\n".join([header, *lines]))
    return "\n".join(blocks)


#: Options a SYN+ACK may carry only if the SYN offered them (Linux's tcp_synack_options).
ANSWERED_ONLY_IF_OFFERED = ("WS", "TS", "SACK_PERM")


def check_option_answers(syn: Segment, syn_ack: Segment) -> list[str]:
    """What in a SYN+ACK's options breaks the rules of the answer; [] when nothing does.

    WS, TS and SACK_PERM come back only if the SYN offered them; the SYN's timestamp echo
    (ecr) is 0 and the SYN+ACK's echoes the SYN's val.
    """
    if syn.flags != "SYN" or syn_ack.flags != "SYN+ACK":
        raise ValueError(f"give a SYN and its SYN+ACK, not {syn.flags} and {syn_ack.flags}")
    offered, answered = dict(syn.options), dict(syn_ack.options)
    problems = [
        f"the SYN+ACK carries {name}, which the SYN did not offer"
        for name in ANSWERED_ONLY_IF_OFFERED
        if name in answered and name not in offered
    ]
    if "TS" in offered and offered["TS"][1] != 0:
        problems.append(f"the SYN's timestamp echo is {offered['TS'][1]}, not 0")
    if "TS" in answered and "TS" in offered and answered["TS"][1] != offered["TS"][0]:
        problems.append(
            f"the SYN+ACK echoes {answered['TS'][1]}, not the SYN's val {offered['TS'][0]}"
        )
    return problems
