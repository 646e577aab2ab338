"""Record the handshake captures shipped with the lab (the RECORDING tier). Run as root.

Writes handshake_lab/data/handshake.pcap (captured live on the real loopback) and
handshake_slow.pcap (slow motion, in a private network namespace), each with a JSON sidecar
holding the date, the kernel release, the tier and, for slow motion, the sampled states.
Usage: sudo .venv/bin/python tools/record_handshake.py
"""

from __future__ import annotations

import datetime
import json
import platform
import sys
from pathlib import Path

from handshake_lab.capture.tiers import Tier, capture_handshake
from handshake_lab.model.pcap import write_pcap
from handshake_lab.model.tcp_model import check_handshake

DATA_DIRECTORY = Path(__file__).resolve().parent.parent / "handshake_lab" / "data"


def record(stem: str, slow_motion: bool, tier: Tier) -> None:
    capture = capture_handshake(slow_motion=slow_motion, tiers=[tier])
    problems = check_handshake(capture.segments)
    if problems:
        raise SystemExit(f"{stem}: the capture does not match the model: {'; '.join(problems)}")
    write_pcap(capture.segments, DATA_DIRECTORY / f"{stem}.pcap")
    sidecar = {
        "recorded_on": datetime.date.today().isoformat(),
        "kernel": platform.release(),
        "tier": capture.tier.value,
        "slow_motion": slow_motion,
        "explanation": capture.explanation,
        "states": [[time, side, state.name] for time, side, state in capture.states],
    }
    (DATA_DIRECTORY / f"{stem}.json").write_text(json.dumps(sidecar, indent=1) + "\n")
    print(f"{stem}: {len(capture.segments)} segments, {capture.explanation}")


def main() -> int:
    try:
        record("handshake", slow_motion=False, tier=Tier.LIVE)
    except RuntimeError as error:
        print(f"{error} Run this tool as root: sudo .venv/bin/python {sys.argv[0]}")
        return 1
    record("handshake_slow", slow_motion=True, tier=Tier.NAMESPACE)
    return 0


if __name__ == "__main__":
    sys.exit(main())
