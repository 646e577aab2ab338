"""The saved SYN (TCP_SAVE_SYN / TCP_SAVED_SYN), the ISN's clock and TIME-WAIT reuse, on real
loopback sockets: no root needed."""

from __future__ import annotations

import contextlib
import errno
import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest

import handshake_lab
from handshake_lab import platforms
from handshake_lab.kernel import saved_syn as saved_syn_module
from handshake_lab.kernel.saved_syn import save_syns, saved_syn
from handshake_lab.net.syn_experiments import (
    ISN_TICK_NS,
    TIME_WAIT_SEQ_JUMP,
    isn_clock,
    time_wait_reuse,
)

pytestmark = [
    pytest.mark.kernel,
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux only"),
]


@contextlib.contextmanager
def accepted(family=socket.AF_INET, host="127.0.0.1", *, save=True):
    """(listener, client, the accepted socket), all closed on exit."""
    with socket.socket(family, socket.SOCK_STREAM) as listener:
        listener.bind((host, 0))
        if save:
            save_syns(listener)
        listener.listen(4)
        listener.settimeout(2)
        with socket.create_connection(listener.getsockname()[:2], timeout=2) as client:
            conn, _ = listener.accept()
            with conn:
                yield listener, client, conn


def test_saved_syn_is_the_clients_syn_as_received():
    with accepted() as (listener, client, conn):
        syn = saved_syn(conn)
        assert syn.flags == "SYN" and syn.ack == 0 and syn.payload_len == 0
        assert syn.src == client.getsockname() and syn.dst == listener.getsockname()
        names = [name for name, _ in syn.options]
        assert {"MSS", "SACK_PERM", "TS", "WS"} <= set(names), names


def test_saved_syn_over_ipv6():
    if not socket.has_ipv6:
        pytest.skip("this Python has no IPv6")
    try:
        context = accepted(socket.AF_INET6, "::1")
        with context as (listener, client, conn):
            syn = saved_syn(conn)
            assert syn.flags == "SYN" and syn.src[:2] == client.getsockname()[:2]
    except OSError as error:
        if error.errno in (errno.EADDRNOTAVAIL, errno.EAFNOSUPPORT):
            pytest.skip(f"no ::1 here: {error}")
        raise


def test_a_listener_that_did_not_save_says_to_call_save_syns():
    with accepted(save=False) as (_, _client, conn):
        with pytest.raises(LookupError, match=r"save_syns\(listener\)"):
            saved_syn(conn)


def test_the_kernel_gives_the_syn_once():
    with accepted() as (_, _client, conn):
        saved_syn(conn)
        with pytest.raises(LookupError, match="once"):
            saved_syn(conn)


def test_saved_syn_with_link_header_is_decoded_too():
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.setsockopt(socket.IPPROTO_TCP, saved_syn_module.TCP_SAVE_SYN, 2)
        listener.listen(1)
        listener.settimeout(2)
        with socket.create_connection(listener.getsockname(), timeout=2) as client:
            conn, _ = listener.accept()
            with conn:
                assert saved_syn(conn).src == client.getsockname()


def test_bad_arguments_and_other_platforms(monkeypatch):
    with pytest.raises(TypeError, match="accepted TCP socket"):
        saved_syn("not a socket")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        with pytest.raises(TypeError, match="TCP listening socket"):
            save_syns(udp)
    with pytest.raises(ValueError, match="seconds"):
        isn_clock(0)
    with pytest.raises(ValueError):
        isn_clock(0.1, host="192.0.2.1")
    monkeypatch.setenv(platforms.SWITCH, "darwin")  # as on macOS
    with socket.socket() as sock, pytest.raises(OSError, match="Linux feature"):
        saved_syn(sock)


def test_the_isn_advances_by_the_64_ns_ticks_between_the_syns():
    clock = isn_clock(0.5)
    assert clock.first.src == clock.second.src and clock.first.dst == clock.second.dst
    assert clock.interval >= 0.5, f"the second connect() came only {clock.interval} s later"
    # The hash of the same pair cancels out: what is left is the clock, bounded by our timing.
    assert clock.advance in clock.expected, str(clock)
    ticks = 0.5e9 / ISN_TICK_NS
    assert ticks <= clock.advance < ticks * 1.2, str(clock)  # a sanity bound on the timing
    assert len(clock.expected) < ticks / 2, f"the timing was too loose to mean much: {clock}"


def test_public_names():
    assert handshake_lab.saved_syn is saved_syn
    assert handshake_lab.isn_clock is isn_clock
    assert handshake_lab.time_wait_reuse is time_wait_reuse


def test_a_time_wait_port_is_reused_only_as_tcp_tw_reuse_allows():
    result = time_wait_reuse(wait=2.5)
    if result.why_not:
        pytest.skip(result.why_not)
    if result.tw_reuse == 0:
        assert result.reused_after is None, str(result)
        return
    assert result.reused_after is not None, str(result)
    if (
        result.tw_reuse_delay_ms is not None
    ):  # kernels with tcp_tw_reuse_delay: ms after TIME-WAIT began
        delay = result.tw_reuse_delay_ms / 1e3
        if delay > 0.05:
            assert result.refused_at_once == errno.EADDRNOTAVAIL, str(result)
        assert delay <= result.reused_after < delay + 1.0, str(result)
    else:  # older kernels: once the seconds counter has passed the last timestamp's second
        assert result.reused_after < 2.0, str(result)
    assert result.seq_jump == TIME_WAIT_SEQ_JUMP, str(result)


_FULL_TIME_WAIT_TABLE = """
import json
from kernel_helpers import enter_network_namespace
from handshake_lab.net.syn_experiments import time_wait_reuse
try:
    enter_network_namespace()
    with open("/proc/sys/net/ipv4/tcp_max_tw_buckets", "w") as file:
        file.write("0")  # this namespace's table holds no TIME-WAIT entry
except OSError as error:
    print(json.dumps({"skip": str(error)}))
else:
    try:
        print(json.dumps({"result": str(time_wait_reuse())}))
    except RuntimeError as error:
        print(json.dumps({"error": str(error)}))
"""


@pytest.mark.kernel
def test_a_full_time_wait_table_is_named_when_no_time_wait_entry_appears():
    """At tcp_max_tw_buckets entries the kernel closes a connection without TIME-WAIT: say so,
    with the setting and the counter, instead of a bare 'did not reach TIME-WAIT'."""
    child = subprocess.run(
        [sys.executable, "-c", _FULL_TIME_WAIT_TABLE],
        cwd=Path(__file__).parent,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    lines = child.stdout.splitlines()
    assert lines, f"the child printed nothing (exit {child.returncode}): {child.stderr}"
    report = json.loads(lines[-1])
    if "skip" in report:
        pytest.skip(f"no private network namespace with its own sysctls here: {report['skip']}")
    assert "error" in report, report
    assert "TIME-WAIT table is full" in report["error"], report["error"]
    assert "tcp_max_tw_buckets = 0" in report["error"], report["error"]
    assert "TCPTimeWaitOverflow grew by 1" in report["error"], report["error"]
