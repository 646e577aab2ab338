"""`python -m handshake_lab doctor | demo | states`, run as a learner would run them."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import pytest

from handshake_lab.kernel.sysctls import (
    KernelSettings,
    describe_syn_retries,
    kernel_settings,
)

pytestmark = pytest.mark.kernel


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "handshake_lab", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_doctor_reports_one_line_per_capability():
    result = run("doctor")
    assert result.returncode == 0, result.stderr
    names = [line.split("] ", 1)[1].split(":", 1)[0] for line in result.stdout.splitlines()]
    assert names[:2] == ["platform", "/proc/net/tcp"]
    for name in ("TCP_INFO", "TCP_DEFER_ACCEPT", "SYN retries", "IPv6 loopback", "packet capture"):
        assert name in names
    tiers = ["packet capture", "saved SYN and counters", "evidence tier", "lost segments"]
    assert [name for name in names if name in tiers] == tiers
    line = next(line for line in result.stdout.splitlines() if "] evidence tier:" in line)
    tier = line.split("this machine gets ", 1)[1].split(":")[0]
    assert tier in ("live", "namespace", "saved-syn", "shipped"), result.stdout
    lost = next(line for line in result.stdout.splitlines() if "] lost segments:" in line)
    assert "run live" in lost or "recordings" in lost, lost
    assert all(line.startswith(("[yes]", "[no ]")) for line in result.stdout.splitlines())


def test_demo_prints_a_recorded_handshake():
    result = run("demo")
    assert result.returncode == 0, result.stderr
    assert "connect() returned" in result.stdout
    assert "state ESTABLISHED not accepted" in result.stdout
    assert "connect() returned before accept() was called" in result.stdout


def test_states_lists_the_kernel_table_as_text_and_json():
    from handshake_lab.net.clients import close, connect
    from handshake_lab.net.server import LoopbackServer

    with LoopbackServer(auto_accept=False) as server:
        client = connect(server.address)
        client_port = client.getsockname()[1]
        text = run("states", "--port", str(server.port))
        rows = json.loads(run("states", "--port", str(server.port), "--json").stdout)
        close(client)
    assert text.returncode == 0 and "LISTEN" in text.stdout and "ESTABLISHED" in text.stdout
    # The port number may have been used before: rows of older connections on it are listed too.
    ours = [
        row
        for row in rows
        if row["state"] == "LISTEN" or client_port in (row["local"][1], row["remote"][1])
    ]
    assert sorted(row["state"] for row in ours) == ["ESTABLISHED", "ESTABLISHED", "LISTEN"]


def test_states_refuses_a_bad_port_with_a_clear_message():
    result = run("states", "--port", "70000")
    assert result.returncode == 2
    assert "out of range" in result.stderr


def test_kernel_settings_are_what_the_sysctl_files_say(tmp_path):
    (tmp_path / "ipv4").mkdir()
    (tmp_path / "core").mkdir()
    (tmp_path / "ipv4" / "tcp_syn_retries").write_text("6\n")
    (tmp_path / "ipv4" / "tcp_syn_linear_timeouts").write_text("4\n")
    (tmp_path / "ipv4" / "ip_local_port_range").write_text("32768\t60999\n")
    (tmp_path / "core" / "somaxconn").write_text("4096\n")
    settings = kernel_settings(str(tmp_path))
    assert (
        settings.syn_retries,
        settings.syn_linear_timeouts,
        settings.somaxconn,
        settings.local_port_range,
    ) == (6, 4, 4096, (32768, 60999))
    assert settings.syncookies is None, "a setting whose file is missing reads as None"


@pytest.mark.skipif(
    not os.path.exists("/proc/sys/net/ipv4/tcp_syn_retries"),
    reason="this system publishes no TCP sysctls under /proc/sys",
)
def test_kernel_settings_are_this_hosts():
    with open("/proc/sys/net/ipv4/tcp_syn_retries", encoding="ascii") as file:
        assert kernel_settings().syn_retries == int(file.read())


def test_missing_kernel_settings_are_said_plainly():
    missing = kernel_settings("/nonexistent")
    assert missing == KernelSettings(None, None, None, None, None, None, None)
    assert "does not publish" in describe_syn_retries(missing)


def test_a_reader_that_leaves_early_gets_no_broken_pipe_error():
    """`python -m handshake_lab states | head -1`: head exits after one line."""
    with socket.create_server(("127.0.0.1", 0)):  # at least one row besides the header
        process = subprocess.Popen(
            [sys.executable, "-m", "handshake_lab", "states"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        process.stdout.close()  # the reader is gone before anything was written
        _, errors = process.communicate(timeout=60)
    assert "BrokenPipe" not in errors and "Broken pipe" not in errors, errors
    assert errors == "", errors


def test_states_for_a_port_imports_no_more_than_it_needs():
    # Its start-up is part of every `states` run: json is for --json only, and the C library's
    # recvmmsg is found without ctypes.util (which imports subprocess and runs ldconfig).
    code = (
        "import sys; before = set(sys.modules); from handshake_lab.__main__ import main; "
        "main(sys.argv[1:]); print(' '.join(sorted(set(sys.modules) - before)))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, "states", "--port", "1"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    loaded = set(result.stdout.splitlines()[-1].split())
    assert "handshake_lab.kernel.sock_diag_dump" in loaded
    assert not loaded & {"json", "subprocess", "ctypes.util"}, loaded
