"""Notebook 04's full accept queue, recorded on Linux, for the platforms that cannot run it.

The experiment of notebook 04, section 2: a server with listen(1) that does not accept, two
clients that fill its accept queue, then a third client whose SYN the kernel drops and whose
kernel resends it on its schedule, until accept() frees a place. Seeing it takes Linux's
TCP_INFO (the queue's length, the SYN's retransmission count), so on macOS and Windows the
notebook draws this recording instead, labelled with its date, its kernel and the command that
made it: ``python -m handshake_lab.capture.full_queue_recording --record`` (Linux, any user).
Rules: a recording is never presented as live; every wait is bounded; a run whose third
client did not wait in SYN-SENT is refused, not saved.
"""

from __future__ import annotations

import dataclasses
import json
import platform
import sys
import time
from datetime import date
from pathlib import Path

from .. import platforms
from ..kernel.tcp_info import wait_for_syn_retransmit
from ..net.clients import close, connect, finish_connect, start_connect
from ..net.server import LoopbackServer
from ..record.events import Recording
from ..record.recorder import Recorder
from ..timeouts import KERNEL_TIMER_TIMEOUT

__all__ = ["RECORDING", "RecordedFullQueue", "full_queue_recording", "run_full_queue"]

RECORDING = Path(__file__).resolve().parent.parent / "data" / "full_queue_recording.json"
_COMMAND = "python -m handshake_lab.capture.full_queue_recording --record"
_PAUSE = 0.2  # seconds between the first steps and after the last: only for the figure


@dataclasses.dataclass(frozen=True)
class RecordedFullQueue:
    """The recording, the moment client 3's first retransmission was seen, and the label."""

    recording: Recording
    retransmissions_ns: tuple[int, ...]
    label: str


def run_full_queue() -> tuple[Recording, tuple[int, ...]]:
    """Run the experiment on this Linux machine; the recording and the retransmission seen."""
    with Recorder() as recorder, LoopbackServer(backlog=1, auto_accept=False) as server:
        clients = []
        try:
            for _ in range(2):  # fills the queue: listen(1) holds 1 + 1
                time.sleep(_PAUSE)
                clients.append(connect(server.address))
            time.sleep(_PAUSE)
            started = time.monotonic()
            clients.append(start_connect(server.address))  # its SYN meets a full queue
            wait_for_syn_retransmit(clients[-1], started)
            retry_seen_ns = time.monotonic_ns()
            server.accept()  # frees a place in the queue
            finish_connect(clients[-1], timeout=KERNEL_TIMER_TIMEOUT)
            time.sleep(_PAUSE)
        finally:
            for client in clients:
                close(client)
    recording = recorder.recording
    states = recording.states_of("client 3")
    if not states or states[0] != "SYN_SENT":
        raise RuntimeError(f"client 3 did not wait in SYN-SENT (its states: {states}); not kept")
    return recording, (retry_seen_ns,)


def full_queue_recording(path: Path = RECORDING) -> RecordedFullQueue:
    """The recording shipped with the lab, with the sentence that labels it."""
    recorded = json.loads(path.read_text(encoding="utf-8"))
    label = (
        f"{platforms.name()} cannot show the accept queue, so this is a recording made by this "
        f"lab's own tool on {recorded['recorded_on']} with Linux {recorded['kernel']} "
        f"(`{recorded['how']}`)."
    )
    return RecordedFullQueue(
        Recording.from_json(json.dumps(recorded["recording"])),
        tuple(recorded["retransmissions_ns"]),
        label,
    )


def record(path: Path = RECORDING) -> Path:
    """Run the experiment here and write it where the lab ships it."""
    if not platforms.is_linux():
        raise OSError(f"the recording is made on Linux, not on {platforms.name()}")
    recording, retransmissions_ns = run_full_queue()
    document = {
        "recorded_on": date.today().isoformat(),
        "kernel": platform.release(),
        "how": _COMMAND,
        "retransmissions_ns": list(retransmissions_ns),
        "recording": json.loads(recording.to_json()),
    }
    path.write_text(json.dumps(document, indent=1) + "\n", encoding="utf-8")
    return path


def main(argv: list[str]) -> int:
    if argv[:1] != ["--record"] or len(argv) > 2:
        print(f"usage: {_COMMAND} [FILE]", file=sys.stderr)
        return 2
    written = record(Path(argv[1]) if len(argv) == 2 else RECORDING)
    print(f"wrote {written}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
