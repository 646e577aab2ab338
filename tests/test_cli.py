"""`python -m handshake_lab doctor | demo | states`, run as a learner would run them."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from handshake_lab.kernel.sysctls import (
    KernelSettings,
    describe_syn_retries,
    kernel_settings,
    syn_retry_gaps,
)

pytestmark = pytest.mark.kernel


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "handshake_lab", *args], capture_output=True,
                          text=True, timeout=60, check=False)


def test_doctor_reports_one_line_per_capability():
    result = run("doctor")
    assert result.returncode == 0, result.stderr
    names = [line.split("] ", 1)[1].split(":", 1)[0] for line in result.stdout.splitlines()]
    assert names[:2] == ["platform", "/proc/net/tcp"]
    for name in ("TCP_INFO", "TCP_DEFER_ACCEPT", "SYN retries", "IPv6 loopback",
                 "packet capture"):
        assert name in names
    assert all(line.startswith(("[yes]", "[no ]")) for line in result.stdout.splitlines())


def test_demo_prints_a_recorded_handshake():
    result = run("demo")
    assert result.returncode == 0, result.stderr
    assert "connect() returned" in result.stdout
    assert "state ESTABLISHED not accepted" in result.stdout
    assert "connect() returned before accept() was called" in result.stdout


def test_states_lists_the_kernel_table_as_text_and_json():
    from handshake_lab.net.loopback import LoopbackServer, close, connect

    with LoopbackServer(auto_accept=False) as server:
        client = connect(server.address)
        text = run("states", "--port", str(server.port))
        rows = json.loads(run("states", "--port", str(server.port), "--json").stdout)
        close(client)
    assert text.returncode == 0 and "LISTEN" in text.stdout and "ESTABLISHED" in text.stdout
    assert {row["state"] for row in rows} == {"LISTEN", "ESTABLISHED"}
    assert len(rows) == 3


def test_states_refuses_a_bad_port_with_a_clear_message():
    result = run("states", "--port", "70000")
    assert result.returncode == 2
    assert "out of range" in result.stderr


def test_kernel_settings_are_read_from_this_host():
    settings = kernel_settings()
    assert settings.syn_retries is None or settings.syn_retries > 0
    missing = kernel_settings("/nonexistent")
    assert missing == KernelSettings(None, None, None, None, None, None, None)
    assert "does not publish" in describe_syn_retries(missing)


@pytest.mark.parametrize("linear, expected", [
    (4, [1, 1, 1, 1, 1, 2]),
    (None, [1, 2, 4, 8, 16, 32]),
    (0, [1, 2, 4, 8, 16, 32]),
])
def test_syn_retry_gaps(linear, expected):
    assert syn_retry_gaps(linear, 6) == expected
