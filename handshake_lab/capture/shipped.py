"""The capture shipped with the lab: real handshakes recorded once, shown where none can be made.

``tools/record_handshake.py`` makes them with ``save_shipped_capture`` (as root: one live, one
slow-motion in a private namespace). Each is a pcap file, which tcpdump and Wireshark open, and
a JSON sidecar written by ``Capture.to_json`` without the frames: the date and kernel it was
made on, the tier it was made with and its explanation then, and the sampled states.
``load_shipped_capture`` reads them back as a Capture of the SHIPPED tier.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from ..model.pcap import read_pcap, write_pcap
from .evidence import Capture, Tier

__all__ = ["DATA_DIRECTORY", "load_shipped_capture", "save_shipped_capture"]

DATA_DIRECTORY = Path(__file__).resolve().parent.parent / "data"


def _stem(slow_motion: bool) -> str:
    return "handshake_slow" if slow_motion else "handshake"


def load_shipped_capture(slow_motion: bool = False, directory: Path = DATA_DIRECTORY) -> Capture:
    """The capture shipped with the lab, with the date and kernel it was made on."""
    stem = _stem(slow_motion)
    made = Capture.from_json(
        (directory / f"{stem}.json").read_text(), segments=read_pcap(directory / f"{stem}.pcap")
    )
    if made.recorded_on is None:
        raise ValueError(
            f"{stem}.json does not say when it was recorded: record it again with "
            "tools/record_handshake.py"
        )
    date, kernel = made.recorded_on
    return dataclasses.replace(
        made,
        tier=Tier.SHIPPED,
        explanation=f"This is the capture shipped with the lab, made on {date} with Linux "
        f"{kernel} ({made.tier.value} tier).",
    )


def save_shipped_capture(
    capture: Capture, recorded_on: tuple[str, str], directory: Path = DATA_DIRECTORY
) -> Path:
    """Write ``capture`` (made now, on (date, kernel release)) as a pcap file and its sidecar.

    Returns the pcap file's path; the sidecar has the same name ending in .json.
    """
    if capture.tier is Tier.SHIPPED:
        raise ValueError("this capture was loaded from the lab's files: save a new capture")
    stem = _stem(capture.slow_motion)
    pcap = directory / f"{stem}.pcap"
    write_pcap(capture.segments, pcap)
    dated = dataclasses.replace(capture, recorded_on=recorded_on)
    sidecar = dated.to_json(with_segments=False, indent=1) + "\n"
    (directory / f"{stem}.json").write_text(sidecar)
    return pcap
