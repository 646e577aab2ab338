"""The doctor's plain summary follows the capabilities it was given, line by line."""

from __future__ import annotations

import pytest

from handshake_lab.host import Capability, FoldedDetails, doctor, what_this_machine_shows


def report(*, states=True, tier="live", lost=True, defer=True) -> list[Capability]:
    return [
        Capability("platform", True, "Linux"),
        Capability("/proc/net/tcp", states, "x"),
        Capability("sock_diag", states, "x"),
        Capability("TCP_DEFER_ACCEPT", defer, "x"),
        Capability("evidence tier", tier != "shipped", "x", tier=tier),
        Capability("lost segments", lost, "x"),
    ]


@pytest.mark.parametrize(
    ("tier", "packets"),
    [
        ("live", "every segment, captured live on the loopback"),
        ("namespace", "private network namespace"),
        ("saved-syn", "your own SYN"),
        ("shipped", "a capture recorded with the lab's own tool"),
    ],
)
def test_the_packets_line_names_the_tier(tier, packets):
    assert packets in what_this_machine_shows(report(tier=tier)).splitlines()[1]


def test_what_is_missing_is_said_plainly():
    lines = what_this_machine_shows(report(states=False, lost=False, defer=False)).splitlines()
    assert "your own sockets only" in lines[0]
    assert lines[2].endswith("shown from the lab's recordings.")
    assert lines[3].endswith("not shown here (the details say why).")


def test_off_linux_the_packets_come_from_the_recording():
    text = what_this_machine_shows([Capability("TCP_DEFER_ACCEPT", False, "x")])
    assert "recorded with the lab's own tool" in text and "Lost segments" not in text


@pytest.mark.kernel
def test_this_machine_gets_a_summary_of_its_real_report():
    lines = what_this_machine_shows(doctor()).splitlines()
    assert [line.split(":")[0] for line in lines] == [
        "Socket states",
        "Packets",
        "Lost segments (notebook 08)",
        "TCP_DEFER_ACCEPT (notebook 04)",
    ]


def test_the_details_fold_in_a_notebook_and_print_whole_as_text():
    details = FoldedDetails(report(lost=False))
    assert repr(details).splitlines()[0] == "[yes] platform: Linux"
    assert "[no ] lost segments: x" in repr(details)
    html = details._repr_html_()
    assert html.startswith("<details><summary>") and "[no ] lost segments: x" in html
