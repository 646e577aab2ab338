"""Capture a real handshake with the best evidence this machine allows, and say which and why.

Tiers, best first: LIVE (a packet socket on the machine's 'lo'; root or CAP_NET_RAW),
NAMESPACE (a fresh child process in its own user + network namespace, see ``namespace_child``),
SAVED_SYN (any Linux, no privileges: the client's real SYN and each end's segment counts, see
``saved_syn_tier``), SHIPPED (the capture shipped with the lab, see ``shipped``). Slow motion
slows a link, so it never runs on the machine's shared loopback: it uses NAMESPACE or the
slow-motion capture shipped with the lab. Slow motion and ``every_segment=True`` skip
SAVED_SYN, which has the SYN alone. ``tiers=`` or the environment variable
HANDSHAKE_LAB_CAPTURE_TIERS (e.g. "namespace,saved-syn,shipped") restricts the tiers tried.
Rules: ``_choose_tier`` is the one walk through the tiers and the one place that words the
reasons; ``best_tier`` (the doctor) and ``capture_handshake`` differ only in what they run in
the namespace and in the outcome they state.
"""

from __future__ import annotations

import dataclasses
import os
import socket
from collections.abc import Iterable
from typing import NamedTuple

from .. import platforms
from .child_process import run_json_child
from .evidence import Capture, Tier
from .experiment import run_experiment
from .saved_syn_tier import saved_syn_handshake, saved_syn_unavailable
from .shipped import load_shipped_capture
from .sniffer import open_packet_socket

__all__ = ["TIERS_ENVIRONMENT_VARIABLE", "TierChoice", "best_tier", "capture_handshake"]

TIERS_ENVIRONMENT_VARIABLE = "HANDSHAKE_LAB_CAPTURE_TIERS"

_LIVE_ALLOWED = "this process may open packet sockets (root or CAP_NET_RAW)"
_SLOW_MOTION_NOT_LIVE = "slow motion never slows the machine's own loopback, which others share"
_SLOWED = " whose loopback was slowed to about 1.4 kbit/s"
_SAVED_SYN_ALLOWED = "any Linux process may read the SYN it accepted and count segments"
_SAVED_SYN_TOO_LITTLE = "the saved-SYN tier keeps the SYN alone, and "


class TierChoice(NamedTuple):
    tier: Tier
    explanation: str


class _ChildReport(NamedTuple):
    """What the namespace child answered: ok, or the stage that failed and why."""

    ok: bool
    stage: str = ""
    error: str = ""
    capture: Capture | None = None


class _Choice(NamedTuple):
    """The tier to use, the reasons that led there, and the namespace child's capture if any."""

    tier: Tier
    reasons: list[str]
    namespace_capture: Capture | None = None


def allowed_tiers(tiers: Iterable[Tier | str] | None) -> tuple[set[Tier], str | None]:
    """The tiers a caller allows (tiers=, else the environment variable, else all) and where
    that choice came from; shared with the lost-segment experiments so both read it alike."""
    if tiers is None:
        setting = os.environ.get(TIERS_ENVIRONMENT_VARIABLE, "").strip()
        if not setting:
            return set(Tier), None
        tiers = [name.strip() for name in setting.split(",") if name.strip()]
        source = f"{TIERS_ENVIRONMENT_VARIABLE}={setting}"
    else:
        source = "the tiers= argument"
        if isinstance(tiers, (str, Tier)):  # a string would be read letter by letter
            name = tiers.value if isinstance(tiers, Tier) else tiers
            raise TypeError(f"tiers= takes a list of tiers, e.g. tiers=[{name!r}]")
    try:
        allowed = {
            tier if isinstance(tier, Tier) else Tier(tier.lower().replace("_", "-"))
            for tier in tiers
        }
    except ValueError:
        names = ", ".join(tier.value for tier in Tier)
        raise ValueError(f"{source} names an unknown tier; use some of: {names}") from None
    return allowed, source


def _live_unavailable() -> str | None:
    """Why this process cannot capture on the real loopback, or None if it can."""
    if not platforms.is_linux() or not hasattr(socket, "AF_PACKET"):
        return f"live capture needs Linux packet sockets, which {platforms.name()} does not have"
    try:
        probe = open_packet_socket()
    except PermissionError:
        return "live capture needs root or CAP_NET_RAW"
    except OSError as error:
        return f"live capture failed to open a packet socket ({error.strerror})"
    probe.close()
    return None


def _run_namespace_child(arguments: list[str]) -> _ChildReport:
    """Run ``namespace_child`` in a fresh process and read its one-line JSON report."""
    if not platforms.is_linux():
        return _ChildReport(False, "platform", f"{platforms.name()} has no namespaces")
    report = run_json_child("handshake_lab.capture.namespace_child", *arguments)
    if not report["ok"]:
        return _ChildReport(False, report.get("stage", "experiment"), report.get("error", ""))
    try:
        text = report.get("capture")
        return _ChildReport(True, capture=None if text is None else Capture.from_json(text))
    except (KeyError, TypeError, ValueError) as error:
        return _ChildReport(False, "experiment", f"an unreadable capture ({error})")


def _namespace_unavailable(report: _ChildReport) -> str:
    if report.stage == "platform":
        return f"private network namespaces exist only on Linux, not on {platforms.name()}"
    if report.stage == "namespace":
        return (
            "this machine does not allow unprivileged user namespaces "
            f"({report.error}; containers and Ubuntu 24.04 often forbid them)"
        )
    return f"the namespace experiment failed ({report.error})"


def _namespace_allowed() -> str:
    if os.geteuid() == 0:
        return "this process may create network namespaces"
    return "this kernel allows unprivileged user namespaces"


def _choose_tier(
    tiers: Iterable[Tier | str] | None,
    slow_motion: bool,
    namespace_arguments: list[str],
    every_segment: bool = False,
) -> _Choice:
    """Walk LIVE, NAMESPACE, SAVED_SYN, SHIPPED once: the first allowed and available tier, and why.

    The namespace child runs with ``namespace_arguments``: a probe, or the experiment itself.
    """
    allowed, source = allowed_tiers(tiers)
    reasons = []
    if Tier.LIVE in allowed and not slow_motion:
        reason = _live_unavailable()
        if reason is None:
            return _Choice(Tier.LIVE, [_LIVE_ALLOWED])
        reasons.append(reason)
    else:
        reasons.append(_SLOW_MOTION_NOT_LIVE if slow_motion else f"live capture is off ({source})")
    if Tier.NAMESPACE in allowed:
        report = _run_namespace_child(namespace_arguments)
        if report.ok:
            return _Choice(Tier.NAMESPACE, [*reasons, _namespace_allowed()], report.capture)
        reasons.append(_namespace_unavailable(report))
    else:
        reasons.append(f"the namespace tier is off ({source})")
    if slow_motion or every_segment:
        wanted = "slow motion needs every segment" if slow_motion else "every segment was asked for"
        reasons.append(_SAVED_SYN_TOO_LITTLE + wanted)
    elif Tier.SAVED_SYN in allowed:
        reason = saved_syn_unavailable()
        if reason is None:
            return _Choice(Tier.SAVED_SYN, [*reasons, _SAVED_SYN_ALLOWED])
        reasons.append(reason)
    else:
        reasons.append(f"the saved-SYN tier is off ({source})")
    if Tier.SHIPPED not in allowed:
        text = "; ".join(reasons) + "; and the shipped tier is off too: allow at least 'shipped'."
        raise RuntimeError(text[0].upper() + text[1:])
    return _Choice(Tier.SHIPPED, reasons)


def _sentence(clauses: list[str], outcome: str) -> str:
    """'Reason one; reason two, so outcome.' with a capital letter."""
    text = "; ".join(clauses) + ", so " + outcome if clauses else outcome
    return text[0].upper() + text[1:] + "."


def best_tier(
    tiers: Iterable[Tier | str] | None = None,
    *,
    slow_motion: bool = False,
    every_segment: bool = False,
) -> TierChoice:
    """Which tier capture_handshake() would use, and why, without capturing (for the doctor)."""
    choice = _choose_tier(tiers, slow_motion, ["--probe"], every_segment)
    outcome = {
        Tier.LIVE: "handshakes are captured live on the loopback interface",
        Tier.NAMESPACE: "handshakes run in a private network namespace",
        Tier.SAVED_SYN: "you see your own SYN as the server's kernel kept it (TCP_SAVED_SYN) "
        "and each end's segment counts (TCP_INFO), and every segment in the capture shipped "
        "with the lab",
        Tier.SHIPPED: "the capture shipped with the lab is shown",
    }[choice.tier]
    return TierChoice(choice.tier, _sentence(choice.reasons, outcome))


def capture_handshake(
    slow_motion: bool = False,
    tiers: Iterable[Tier | str] | None = None,
    *,
    every_segment: bool = False,
    lose: str | None = None,
) -> Capture:
    """Run a real handshake (listen, connect, accept, send, close) and capture it.

    Uses the best tier allowed and available and says which in ``explanation``. With
    ``slow_motion`` the handshake runs on a slowed private loopback (~0.4 s between segments)
    and ``states`` samples both ends in between. The SAVED_SYN tier connects and accepts
    only: its Capture holds the client's real SYN alone and each end's ``counts``
    (``every_segment`` is False); pass ``every_segment=True`` to skip it.
    ``lose`` ("syn", "syn-ack" or "ack") loses that segment once: see ``lost_segments``.
    """
    if lose is not None:  # live, namespace or a recording: lost_segments_evidence says which
        from .lost_segments_evidence import capture_with_loss

        if slow_motion:
            raise ValueError("lose= and slow_motion cannot be combined: choose one")
        return capture_with_loss(lose, tiers)
    namespace_arguments = ["--slow-motion"] if slow_motion else []
    choice = _choose_tier(tiers, slow_motion, namespace_arguments, every_segment)
    if choice.tier is Tier.LIVE:
        capture = Capture(run_experiment().segments, Tier.LIVE, "")
        outcome = "the handshake was captured live on the loopback interface"
    elif choice.tier is Tier.NAMESPACE:
        if choice.namespace_capture is None:
            raise RuntimeError("the namespace child answered without a capture: a lab bug")
        capture = choice.namespace_capture
        outcome = "the handshake ran in a private network namespace"
        outcome += _SLOWED if slow_motion else ""
    elif choice.tier is Tier.SAVED_SYN:
        syn, counts = saved_syn_handshake()
        capture = Capture([syn], Tier.SAVED_SYN, "", counts=counts)
        client, server = counts["client"], counts["server"]
        outcome = (
            "this is the client's real SYN as the server's kernel kept it (TCP_SAVED_SYN); "
            "the SYN+ACK and the ACK are counted, not shown: after the handshake the client "
            f"had sent {client.sent} segments and received {client.received}, the server's "
            f"accepted socket sent {server.sent} and received {server.received} (TCP_INFO)"
        )
    else:
        capture = load_shipped_capture(slow_motion)
        date, kernel = capture.recorded_on
        outcome = f"this is the capture shipped with the lab, made on {date} with Linux {kernel}"
    return dataclasses.replace(capture, explanation=_sentence(choice.reasons, outcome))
