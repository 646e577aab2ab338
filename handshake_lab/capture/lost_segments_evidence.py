"""Where the lost-segment experiments run: here, in a private namespace, or a recording.

SO_ATTACH_FILTER and the packet socket need root (the LIVE tier) or a process that is root of
its own user + network namespace: without root, the experiment runs in a fresh child process
in a private namespace (``namespace_child.enter_private_network``), run as
``python -m handshake_lab.capture.lost_segments_evidence LOSE``, which prints one line of
JSON. Where neither is allowed, ``capture_with_loss`` returns the recording in ``data/``, made
by ``python -m handshake_lab.capture.lost_segments_evidence --record LOSE FILE`` and labelled
with its date, kernel and that command. ``loss_tier`` is the doctor's one-line answer.
Rules: the tiers= argument and HANDSHAKE_LAB_CAPTURE_TIERS are read as ``capture_handshake``
reads them; a run that fails for any reason other than permission is an error, not a fallback.
"""

from __future__ import annotations

import dataclasses
import json
import platform
import socket
import sys
from collections.abc import Iterable
from datetime import date
from pathlib import Path

from .. import platforms
from .child_process import report_from_private_network, run_json_child
from .evidence import Capture, Tier
from .lost_segments import LossCapture, check_loss, run_loss
from .sniffer import open_packet_socket
from .socket_filter import SYN, FlagsRule, attach, unavailable_here
from .tiers import allowed_tiers

__all__ = ["capture_with_loss", "load_recording", "loss_tier", "recording_path"]

DATA_DIRECTORY = Path(__file__).resolve().parent.parent / "data"
_MODULE = "handshake_lab.capture.lost_segments_evidence"  # not __name__: "__main__" in the child


def recording_path(lose: str, client_sends: bytes = b"") -> Path:
    """Where the recording of this loss is shipped (``_then_data``: the client sent data)."""
    stem = "lost_" + check_loss(lose).flags.lower().replace("+", "_")
    return DATA_DIRECTORY / f"{stem}{'_then_data' if client_sends else ''}.json"


def capture_with_loss(
    lose: str, tiers: Iterable[Tier | str] | None = None, *, client_sends: bytes = b""
) -> LossCapture:
    """Lose one segment with the best evidence this machine allows, and say which and why.

    ``tiers`` (or HANDSHAKE_LAB_CAPTURE_TIERS) restricts the tiers tried, as for
    ``capture_handshake``; the recording is the answer where neither live nor namespace runs.
    ``client_sends``: see ``run_loss`` (the recording has ``RECORDED_DATA``).
    """
    check_loss(lose)
    if client_sends and (lose, client_sends) != ("ack", RECORDED_DATA):
        raise ValueError(f"client_sends is recorded only for lose='ack' with {RECORDED_DATA!r}")
    allowed, source = allowed_tiers(tiers)
    reasons = []
    if Tier.LIVE not in allowed:
        reasons.append(f"live capture is off ({source})")
    elif unavailable_here():
        reasons.append(unavailable_here())
    else:
        try:
            capture = run_loss(lose, client_sends=client_sends)
            return dataclasses.replace(capture, explanation=_LIVE_SENTENCE)
        except PermissionError:
            reasons.append("socket filters and packet capture need root here")
    if Tier.NAMESPACE in allowed:
        capture, problem = _run_in_namespace([lose, client_sends.hex()])
        if capture is not None:
            text = "; ".join(reasons) + ", so the experiment ran in a private user + network "
            text += "namespace, where this process is root of its own loopback."
            return dataclasses.replace(capture, explanation=text[0].upper() + text[1:])
        reasons.append(problem)
    else:
        reasons.append(f"the namespace tier is off ({source})")
    return load_recording(lose, "; ".join(reasons), client_sends=client_sends)


RECORDED_DATA = b"hello\n"  # what the client sends in the recording "lost_ack_then_data"
_LIVE_SENTENCE = "This process may attach socket filters and capture packets, so it ran here."


def load_recording(lose: str, why: str = "", *, client_sends: bytes = b"") -> LossCapture:
    """The recording of this loss shipped with the lab, with the date and kernel it was made on
    and the command that made it; ``why``: the reasons it is shown (a clause)."""
    recorded = json.loads(recording_path(lose, client_sends).read_text())
    capture = _from_json(recorded, Tier.SHIPPED)
    text = f"{why}, so this " if why else "This "
    text += f"is a recording made by this lab's own tool on {recorded['recorded_on']} with "
    text += f"Linux {recorded['kernel']} ({recorded['capture']['tier']} tier, `{recorded['how']}`)."
    return dataclasses.replace(
        capture,
        explanation=text[0].upper() + text[1:],
        recorded_on=(recorded["recorded_on"], recorded["kernel"]),
    )


def _as_json(capture: LossCapture) -> dict:
    return {
        "lose": capture.lose,
        "lost": list(capture.lost),
        "filter_removed": capture.filter_removed,
        "capture": json.loads(capture.to_json()),
    }


def _from_json(report: dict, tier: Tier) -> LossCapture:
    capture = Capture.from_json(json.dumps(report["capture"]))
    return LossCapture(
        capture.segments,
        tier,
        "",
        capture.states,
        lose=report["lose"],
        lost=tuple(report["lost"]),
        filter_removed=report["filter_removed"],
    )


def _run_in_namespace(arguments: list[str]) -> tuple[LossCapture | None, str]:
    """The child's capture (None after a probe), or None and why it could not run (a clause)."""
    if not platforms.is_linux():
        return None, f"{platforms.name()} has no network namespaces"
    report = run_json_child(_MODULE, *arguments)
    if report["ok"]:
        return (_from_json(report, Tier.NAMESPACE) if "capture" in report else None), ""
    if report.get("stage") == "experiment":
        return None, f"the experiment failed in the namespace ({report['error']})"
    return None, f"this machine does not allow a private user namespace ({report['error']})"


def _may_filter_and_capture() -> None:
    """PermissionError unless this process may attach a socket filter and open a packet socket."""
    with socket.socket() as sock:
        attach(sock, FlagsRule.exactly(SYN))
    open_packet_socket().close()


def loss_tier() -> tuple[Tier, str]:
    """Where lost-segment experiments run here, and one sentence saying so (for the doctor).

    The namespace is tried with a probe (a filter and a packet socket in a fresh namespace),
    not with the experiment, so this takes a fraction of a second.
    """
    try:
        _may_filter_and_capture()
        return Tier.LIVE, "Lost segments: run live here (socket filters and packet capture work)."
    except (PermissionError, AttributeError):  # AttributeError: no AF_PACKET off Linux
        pass
    _, problem = _run_in_namespace(["--probe"])
    if not problem:
        return Tier.NAMESPACE, (
            "Lost segments: run live in a private user + network namespace (socket filters "
            "need root here)."
        )
    return Tier.SHIPPED, f"Lost segments: shown from the lab's recordings, as {problem}."


def _record(lose: str, file: str, client_sends: bytes) -> int:
    capture = capture_with_loss(lose, client_sends=client_sends)
    if capture.tier is Tier.SHIPPED:
        print("cannot record: this machine cannot run the experiment", file=sys.stderr)
        return 1
    made = (date.today().isoformat(), platform.release())
    what = f"a real handshake that lost its {capture.lost_flags} once"
    then = " --then-send" if client_sends else ""
    recording = {
        "what": what + (f", then the client sent {client_sends!r}" if client_sends else ""),
        "how": f"python -m {_MODULE} --record {lose} FILE{then}",
        "recorded_on": made[0],
        "kernel": made[1],
        **_as_json(capture),
    }
    Path(file).write_text(json.dumps(recording, indent=1) + "\n")
    return 0


def main(argv: list[str]) -> int:
    """``--record LOSE FILE [--then-send]``: record. Otherwise the namespace child:
    ``LOSE [DATA_HEX]`` or ``--probe``: enter a private namespace, print one JSON line."""
    if argv[:1] == ["--record"] and len(argv) in (3, 4):
        return _record(argv[1], argv[2], RECORDED_DATA if argv[3:] == ["--then-send"] else b"")

    def experiment() -> dict:
        if argv == ["--probe"]:
            _may_filter_and_capture()
            return {}
        lose, data = (argv + ["", ""])[:2]
        return _as_json(run_loss(lose, client_sends=bytes.fromhex(data)))

    return report_from_private_network(experiment, errors=(OSError, ValueError))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
