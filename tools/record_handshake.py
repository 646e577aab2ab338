"""Record the captures shipped with the lab (the SHIPPED tier). Run as root.

Writes handshake_lab/data/handshake.pcap (captured live on the real loopback) and
handshake_slow.pcap (slow motion, in a private network namespace), each with a JSON sidecar
(``Capture.to_json`` without the frames) holding the date, the kernel release, the tier and,
for slow motion, the sampled states.
Usage: sudo .venv/bin/python tools/record_handshake.py
"""

from __future__ import annotations

import datetime
import platform
import sys

from handshake_lab.capture.evidence import Tier
from handshake_lab.capture.shipped import save_shipped_capture
from handshake_lab.capture.tiers import capture_handshake
from handshake_lab.model.replay import check_handshake


def record(slow_motion: bool, tier: Tier) -> None:
    capture = capture_handshake(slow_motion=slow_motion, tiers=[tier])
    problems = check_handshake(capture.segments)
    if problems:
        raise SystemExit(f"the capture does not match the model: {'; '.join(problems)}")
    recorded_on = (datetime.date.today().isoformat(), platform.release())
    pcap = save_shipped_capture(capture, recorded_on)
    print(f"{pcap.name}: {len(capture.segments)} segments, {capture.explanation}")


def main() -> int:
    try:
        record(slow_motion=False, tier=Tier.LIVE)
    except RuntimeError as error:
        print(f"{error} Run this tool as root: sudo .venv/bin/python {sys.argv[0]}")
        return 1
    record(slow_motion=True, tier=Tier.NAMESPACE)
    return 0


if __name__ == "__main__":
    sys.exit(main())
