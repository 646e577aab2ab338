"""The listen-queue experiments with the best evidence this machine allows: live, or a recording.

``listen_queue_experiments`` runs ``listen_queue_child`` in a fresh process, in its own user
and network namespace, where the experiments may set that namespace's tcp_syncookies and
tcp_abort_on_overflow without root. Where the machine forbids such namespaces (Binder, most
containers, Ubuntu 24.04 by default) or is not Linux, it returns the recording shipped with the
lab instead, made by the same child and labelled with its date, kernel and how it was made, and
says in one sentence why. Rules: the explanation says which it is; a recording is never
presented as live. Record again with ``python -m handshake_lab.capture.listen_queue_evidence
--record`` (as root, or as a user allowed user namespaces).
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import sys
from pathlib import Path

from .. import platforms
from .child_process import run_json_child
from .listen_queue import AckOverflowResult, SynQueueResult
from .shipped import DATA_DIRECTORY

__all__ = ["ListenQueueEvidence", "listen_queue_experiments", "record_listen_queue_experiments"]

RECORDING_NAME = "listen_queue_recording.json"
CHILD_MODULE = "handshake_lab.capture.listen_queue_child"
MADE_WITH = "python -m handshake_lab.capture.listen_queue_evidence --record"


@dataclasses.dataclass(frozen=True)
class ListenQueueEvidence:
    """Both experiments under each setting, and where they come from.

    ``syn_queue`` is keyed by tcp_syncookies, ``ack_overflow`` by tcp_abort_on_overflow.
    ``live`` is False for the recording, whose ``recorded_on`` and ``made_with`` say when and how.
    """

    live: bool
    explanation: str
    kernel: str
    syn_queue: dict[int, SynQueueResult]
    ack_overflow: dict[int, AckOverflowResult]
    recorded_on: str | None = None
    made_with: str | None = None


def _from_report(report: dict, **fields) -> ListenQueueEvidence:
    syn_queue = [SynQueueResult.from_dict(item) for item in report["syn_queue"]]
    ack_overflow = [AckOverflowResult.from_dict(item) for item in report["ack_overflow"]]
    return ListenQueueEvidence(
        kernel=report["kernel"],
        syn_queue={result.syncookies: result for result in syn_queue},
        ack_overflow={result.abort_on_overflow: result for result in ack_overflow},
        **fields,
    )


def run_child() -> tuple[dict | None, str]:
    """Run the experiments in a fresh namespaced process: (its report, '') or (None, why not)."""
    if not platforms.is_linux():
        return None, f"private network namespaces exist only on Linux, not on {platforms.name()}"
    report = run_json_child(CHILD_MODULE)
    if report["ok"]:
        return report, ""
    if report.get("stage") == "namespace":
        return None, (
            "this machine does not let this user create a private network namespace "
            f"({report.get('error')}), where those settings could be changed without root"
        )
    return None, f"the experiments failed ({report.get('error')})"


def load_recording(directory: Path = DATA_DIRECTORY, why: str = "") -> ListenQueueEvidence:
    """The recording shipped with the lab, with when and how it was made."""
    data = json.loads((directory / RECORDING_NAME).read_text(encoding="utf-8"))
    clause = f"{why[0].upper()}{why[1:]}, so this" if why else "This"
    explanation = (
        f"{clause} is a recording: the same experiments, run on {data['recorded_on']} "
        f"with Linux {data['kernel']} by `{data['made_with']}`."
    )
    return _from_report(
        data,
        live=False,
        explanation=explanation,
        recorded_on=data["recorded_on"],
        made_with=data["made_with"],
    )


def listen_queue_experiments(*, live: bool = True) -> ListenQueueEvidence:
    """Run the SYN-queue and ACK-overflow experiments live where allowed, else the recording.

    ``live=False`` shows the recording without trying.
    """
    if not live:
        return load_recording()
    report, why = run_child()
    if report is None:
        return load_recording(why=why)
    return _from_report(
        report,
        live=True,
        explanation=(
            "These ran just now, in a private network namespace whose own tcp_syncookies and "
            "tcp_abort_on_overflow the experiment set (the machine's settings are untouched)."
        ),
    )


def record_listen_queue_experiments(directory: Path = DATA_DIRECTORY) -> Path:
    """Run the experiments now and write them as the recording shipped with the lab."""
    report, why = run_child()
    if report is None:
        raise RuntimeError(f"cannot record: {why}; run as root or where user namespaces work")
    data = {
        "what": "a recording of handshake_lab's listen-queue experiments (not live)",
        "recorded_on": datetime.date.today().isoformat(),
        "made_with": MADE_WITH,
        **{key: report[key] for key in ("kernel", "syn_queue", "ack_overflow")},
    }
    path = directory / RECORDING_NAME
    path.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
    return path


if __name__ == "__main__":
    if sys.argv[1:] != ["--record"]:
        sys.exit(f"usage: {MADE_WITH}")
    print(f"wrote {record_listen_queue_experiments()}")
