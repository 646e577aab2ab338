"""The handshake's sequence numbers, picked out of captured segments and shown as text.

``handshake_of`` picks the SYN, the SYN+ACK that answers it and the ACK that completes it;
``sequence_table`` shows their seq and ack numbers on the wire and relative to each side's
initial sequence number (ISN, what Wireshark shows by default); ``ack_relations`` states the
handshake's ack rules as True/False lines, text that stays the same whatever the ISNs.
Pure functions of ``Segment``s: no sockets, no clock. Sequence arithmetic is mod 2**32.
"""

from __future__ import annotations

from .packets import Segment, first_syn, initial_sequence_numbers, relative_seq_ack
from .tcp_model import SEQUENCE_SPACE

__all__ = ["ack_relations", "handshake_of", "sequence_table"]


def handshake_of(segments: list[Segment]) -> tuple[Segment, Segment, Segment]:
    """The first SYN, the SYN+ACK that answers it and the client's ACK that completes it."""
    syn = first_syn(segments)
    if syn is None:
        raise ValueError("no SYN in these segments: capture from before connect()")
    later = segments[segments.index(syn) + 1 :]
    syn_ack = next((s for s in later if s.src == syn.dst and s.flags == "SYN+ACK"), None)
    if syn_ack is None:
        raise ValueError("no SYN+ACK answers the SYN: is the server listening?")
    later = later[later.index(syn_ack) + 1 :]
    ack = next((s for s in later if s.src == syn.src and s.has("ACK")), None)
    if ack is None:
        raise ValueError("the client's ACK was not captured: capture until connect() returns")
    return syn, syn_ack, ack


def sequence_table(segments: list[Segment], *, absolute: bool = True) -> str:
    """The handshake's seq and ack, absolute (as on the wire) and relative to each side's ISN."""
    handshake = handshake_of(segments)
    isns = initial_sequence_numbers(list(handshake))
    header = f"{'segment':<8} {'from':<7}"
    if absolute:
        header += f" {'seq (wire)':>11} {'ack (wire)':>11}  |"
    header += f" {'relative seq':>12} {'relative ack':>12}"
    lines = [header]
    client = handshake[0].src
    for segment in handshake:
        relative_seq, relative_ack = relative_seq_ack(segment, isns)
        sender = "client" if segment.src == client else "server"
        line = f"{segment.flags:<8} {sender:<7}"
        if absolute:
            ack = str(segment.ack) if segment.has("ACK") else "-"
            line += f" {segment.seq:>11} {ack:>11}  |"
        line += f" {relative_seq:>12} {'-' if relative_ack is None else relative_ack:>12}"
        lines.append(line)
    return "\n".join(lines)


def ack_relations(segments: list[Segment]) -> str:
    """The handshake's two ack rules, each as a True/False line (stable text for any ISNs)."""
    syn, syn_ack, ack = handshake_of(segments)
    return "\n".join(
        [
            f"SYN+ACK ack = SYN seq + 1:     {syn_ack.ack == (syn.seq + 1) % SEQUENCE_SPACE}",
            f"ACK ack     = SYN+ACK seq + 1: {ack.ack == (syn_ack.seq + 1) % SEQUENCE_SPACE}",
            f"ACK seq     = SYN seq + 1:     {ack.seq == (syn.seq + 1) % SEQUENCE_SPACE}",
        ]
    )
