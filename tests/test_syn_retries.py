"""SYN retries: the kernel's rule (model/syn_retries.py) in tables, then against real connects.

The measurement is the package's own (net/syn_retry_measurement.py, what notebook 04 runs): a
client with TCP_SYNCNT against a full accept queue, its retransmissions timed from its TCP_INFO
retransmit count. Each measurement waits for real kernel timers, about 7 s, which is the point
of it.

Tolerance: the kernel never fires a timer before its jiffy (EARLY allows one jiffy per wait and
the poll interval); it fires it late by up to the timer wheel's granularity for that length
(1/8 to 1/64 of the wait, e.g. up to 32 ms of a 1 s wait at HZ=250, 64 ms at HZ=1000), and
each wait starts when the previous one fired, so lateness adds up over the 5 waits; with
scheduling delays on a loaded 2-core machine LATE = 0.5 s bounds it. The retransmission count
must match exactly.

The cases with tcp_syn_linear_timeouts 0 and 1 run in a fresh child process in a private
network namespace (unshare(CLONE_NEWNET) as root, a user+net namespace otherwise; see
handshake_lab/capture/namespace_child.py) whose own sysctl is set there: the host's setting is
never touched. This file is that child when run as a script.
"""

from __future__ import annotations

import dataclasses
import errno
import itertools
import json
import subprocess
import sys

import pytest
from kernel_helpers import enter_network_namespace

from handshake_lab import syn_retry_schedule
from handshake_lab.kernel.sysctls import describe_syn_retries, kernel_settings, syn_retry_gaps
from handshake_lab.kernel.tcp_info import has_tcp_info
from handshake_lab.model.syn_retries import (
    MAX_TCP_SYNCNT,
    SynRetrySchedule,
    schedule_syn_retries,
)
from handshake_lab.net.syn_retry_measurement import MeasuredSynRetries, measure_syn_retries
from handshake_lab.timeouts import SHORT_TIMEOUT

EARLY = 0.05
LATE = 0.5
#: The child process: interpreter start, namespace, ~7 s of timers, the report.
CHILD_TIMEOUT = 30.0
LINEAR_TIMEOUTS_SYSCTL = "/proc/sys/net/ipv4/tcp_syn_linear_timeouts"


# --- the pure rule, exhaustively ---------------------------------------------------------


@pytest.mark.parametrize(
    "syn_retries, linear, retransmissions, gives_up_after",
    [
        # Defaults on Linux 6.5+: 4 linear waits of 1 s, then doubling; syn_retries + linear
        # retransmissions; the 64 s wait after the 10th ends at 131 s (measured ~134 s: the
        # timer wheel fires long timers late).
        (6, 4, (1, 2, 3, 4, 5, 7, 11, 19, 35, 67), 131),
        # TCP_SYNCNT=2: the count would allow 6, but tcp_model_timeout(2) = 7 s ends it first.
        (2, 4, (1, 2, 3, 4, 5), 7),
        (2, 0, (1, 3), 7),
        (2, None, (1, 3), 7),
        (1, 4, (1, 2), 3),
        (1, 0, (1,), 3),
        (3, 4, (1, 2, 3, 4, 5, 7, 11), 19),
        (3, 0, (1, 3, 7), 15),
        (6, 0, (1, 3, 7, 15, 31, 63), 127),
        (6, None, (1, 3, 7, 15, 31, 63), 127),
        # Past ilog2(120 / 1) = 6 doublings the RTO stays at TCP_RTO_MAX = 120 s.
        (8, 0, (1, 3, 7, 15, 31, 63, 127, 247), 367),
        # The limits are checked only when the timer fires: 7 s has passed at 8 s.
        (2, 1, (1, 2, 4), 8),
        (6, 1, (1, 2, 4, 8, 16, 32, 64), 128),
    ],
)
def test_schedule_follows_the_kernels_rule(syn_retries, linear, retransmissions, gives_up_after):
    schedule = schedule_syn_retries(syn_retries, linear)
    assert schedule.retransmissions == retransmissions
    assert schedule.gives_up_after == gives_up_after


@pytest.mark.parametrize("syn_retries", range(1, MAX_TCP_SYNCNT + 1))
@pytest.mark.parametrize("linear", [None, 0, 1, 4, 10, MAX_TCP_SYNCNT])
def test_every_allowed_setting_gives_an_ordered_finite_schedule(syn_retries, linear):
    schedule = schedule_syn_retries(syn_retries, linear)
    times = (0.0, *schedule.retransmissions, schedule.gives_up_after)
    gaps = [later - earlier for earlier, later in itertools.pairwise(times)]
    assert all(1 <= gap <= 120 for gap in gaps), gaps
    # Exactly syn_retries retransmissions when the waits double from the start...
    if not linear:
        assert len(schedule.retransmissions) == syn_retries
    # ...never more than syn_retries + linear, and the linear waits of 1 s come first.
    assert syn_retries <= len(schedule.retransmissions) <= syn_retries + (linear or 0)
    assert set(gaps[: (linear or 0) + 1]) == {1.0}, gaps


def test_linear_zero_is_the_old_kernels_rule():
    for syn_retries in range(1, MAX_TCP_SYNCNT + 1):
        old = schedule_syn_retries(syn_retries, None)
        assert old.retransmissions == schedule_syn_retries(syn_retries, 0).retransmissions
        assert old.gives_up_after == schedule_syn_retries(syn_retries, 0).gives_up_after


def test_schedule_is_frozen_and_describes_itself():
    schedule = schedule_syn_retries(2, 4, retries_from="TCP_SYNCNT")
    with pytest.raises(AttributeError):
        schedule.gives_up_after = 1  # type: ignore[misc]
    assert schedule.describe() == (
        "TCP_SYNCNT=2, tcp_syn_linear_timeouts=4: an unanswered SYN is sent again 5 times, "
        "1, 2, 3, 4, 5 s after the first, and connect() fails with ETIMEDOUT "
        "7 s after it (kernel timers fire a little late, the later ones most, never early)"
    )
    old = schedule_syn_retries(6, None).describe()
    assert old.startswith("tcp_syn_retries=6 (no tcp_syn_linear_timeouts here): ")
    assert "6 times, 1, 3, 7, 15, 31, 63 s" in old


@pytest.mark.parametrize(
    "arguments, message",
    [
        ((0, 4), "from 1 to 127"),
        ((-1, 4), "from 1 to 127"),
        ((128, 4), "from 1 to 127"),
        ((256, 4), "from 1 to 127"),
        (("2", 4), "whole number"),
        ((True, 4), "whole number"),
        ((2.0, 4), "whole number"),
        ((2, -1), "tcp_syn_linear_timeouts must be from 0 to 127"),
        ((2, 128), "tcp_syn_linear_timeouts must be from 0 to 127"),
        ((2, 4, 0), "0 < initial_rto <= max_rto"),
        ((2, 4, 2, 1), "0 < initial_rto <= max_rto"),
    ],
)
def test_bad_settings_say_what_to_pass(arguments, message):
    with pytest.raises(ValueError, match=message):
        schedule_syn_retries(*arguments)


def test_bad_source_name_is_refused():
    with pytest.raises(ValueError, match="'tcp_syn_retries' or 'TCP_SYNCNT'"):
        schedule_syn_retries(2, 4, retries_from="syncnt")


# --- the views in kernel/sysctls.py use the same rule ---------------------------------


def _settings_dir(tmp_path, syn_retries: str | None, linear: str | None) -> str:
    (tmp_path / "ipv4").mkdir()
    if syn_retries is not None:
        (tmp_path / "ipv4" / "tcp_syn_retries").write_text(syn_retries)
    if linear is not None:
        (tmp_path / "ipv4" / "tcp_syn_linear_timeouts").write_text(linear)
    return str(tmp_path)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the schedule is Linux's")
def test_schedule_reads_the_settings(tmp_path):
    root = _settings_dir(tmp_path, "6\n", "4\n")
    assert syn_retry_schedule(sysctl_root=root) == schedule_syn_retries(6, 4)
    assert syn_retry_schedule(2, sysctl_root=root) == schedule_syn_retries(
        2, 4, retries_from="TCP_SYNCNT"
    )


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the schedule is Linux's")
def test_schedule_on_a_kernel_without_linear_timeouts(tmp_path):
    root = _settings_dir(tmp_path, "6\n", None)
    schedule = syn_retry_schedule(sysctl_root=root)
    assert schedule.syn_linear_timeouts is None
    assert schedule.retransmissions == (1, 3, 7, 15, 31, 63)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the schedule is Linux's")
def test_unreadable_settings_say_what_to_pass(tmp_path):
    with pytest.raises(FileNotFoundError, match="pass syncnt"):
        syn_retry_schedule(sysctl_root=str(tmp_path))
    assert syn_retry_schedule(2, sysctl_root=str(tmp_path)).retransmissions == (1, 3)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the schedule is Linux's")
def test_bad_syncnt_says_what_to_pass():
    with pytest.raises(ValueError, match="TCP_SYNCNT must be from 1 to 127"):
        syn_retry_schedule(300)


def test_off_linux_the_error_says_why(monkeypatch):
    monkeypatch.setattr(sys, "platform", "darwin")
    with pytest.raises(NotImplementedError, match="Linux's"):
        syn_retry_schedule()


@pytest.mark.parametrize(
    "linear, count, expected",
    [
        (4, 6, [1, 1, 1, 1, 1, 2]),
        (None, 6, [1, 2, 4, 8, 16, 32]),
        (0, 6, [1, 2, 4, 8, 16, 32]),
        (4, 1, [1]),
        (0, 0, []),
    ],
)
def test_syn_retry_gaps_are_the_schedules_waits(linear, count, expected):
    assert syn_retry_gaps(linear, count) == expected


def test_describe_syn_retries_is_the_schedules_sentence(tmp_path):
    root = _settings_dir(tmp_path, "6\n", "4\n")
    assert describe_syn_retries(kernel_settings(root)) == schedule_syn_retries(6, 4).describe()


# --- against the kernel ---------------------------------------------------------------


def assert_measured_as_scheduled(measured: MeasuredSynRetries, schedule: SynRetrySchedule) -> None:
    said = f"the kernel did {measured}, the schedule says {schedule}"
    assert measured.gives_up_after is not None, f"connect() had not failed: {said}"
    assert measured.errno == errno.ETIMEDOUT, f"connect() failed otherwise: {said}"
    assert len(measured.retransmissions) == len(schedule.retransmissions), said
    pairs = [
        *zip(measured.retransmissions, schedule.retransmissions, strict=True),
        (measured.gives_up_after, schedule.gives_up_after),
    ]
    assert all(expected - EARLY <= seen <= expected + LATE for seen, expected in pairs), said


@pytest.mark.kernel
@pytest.mark.skipif(not has_tcp_info(), reason="TCP_INFO's retransmit count is Linux's")
def test_a_real_connect_follows_this_hosts_schedule():
    schedule = syn_retry_schedule(2)
    measured = measure_syn_retries(2, timeout=schedule.gives_up_after + LATE + SHORT_TIMEOUT)
    assert_measured_as_scheduled(measured, schedule)


@pytest.mark.kernel
@pytest.mark.skipif(not has_tcp_info(), reason="network namespaces and TCP_INFO are Linux's")
@pytest.mark.parametrize(
    "linear, retransmissions",
    [
        (0, (1, 3)),  # the old kernels' rule: pure doubling, gives up at 7 s
        (1, (1, 2, 4)),  # gives up at 8 s: the 7 s limit is checked when the timer fires
    ],
)
def test_other_linear_timeouts_in_a_private_network_namespace(linear, retransmissions):
    child = subprocess.run(
        [sys.executable, __file__, str(linear), "2"],
        capture_output=True,
        text=True,
        timeout=CHILD_TIMEOUT,
        check=False,
    )
    lines = child.stdout.splitlines()
    assert lines, f"the child printed nothing (exit {child.returncode}): {child.stderr}"
    report = json.loads(lines[-1])
    if not report["ok"] and report["stage"] in ("namespace", "sysctl"):
        pytest.skip(
            f"this machine cannot make a network namespace with its own sysctls here "
            f"({report['error']})"
        )
    assert report["ok"], f"the child failed: {report} {child.stderr}"
    schedule = schedule_syn_retries(**report["schedule"])
    assert schedule.syn_linear_timeouts == linear, "the namespace's own sysctl was not read"
    assert schedule.retransmissions == retransmissions
    seen = report["measured"]
    measured = MeasuredSynRetries(
        tuple(seen["retransmissions"]), seen["gives_up_after"], seen["errno"]
    )
    assert_measured_as_scheduled(measured, schedule)


# --- the child process ----------------------------------------------------------------


def _child(linear: int, syncnt: int) -> dict:
    try:
        enter_network_namespace()
    except OSError as error:
        return {"ok": False, "stage": "namespace", "error": str(error)}
    try:
        with open(LINEAR_TIMEOUTS_SYSCTL, "w", encoding="ascii") as file:
            file.write(f"{linear}\n")
    except OSError as error:
        return {"ok": False, "stage": "sysctl", "error": str(error)}
    schedule = syn_retry_schedule(syncnt)  # read inside the namespace: its own sysctls
    measured = measure_syn_retries(syncnt, schedule.gives_up_after + LATE + SHORT_TIMEOUT)
    fields = ("syn_retries", "syn_linear_timeouts", "retries_from")
    return {
        "ok": True,
        "schedule": {name: getattr(schedule, name) for name in fields},
        "measured": dataclasses.asdict(measured),
    }


if __name__ == "__main__":
    print(json.dumps(_child(int(sys.argv[1]), int(sys.argv[2]))))
