"""The saved-SYN tier: LoopbackServer(save_syn=True), the client's real SYN and each end's segment
counts, chosen where neither live capture nor a namespace is possible; on real loopback sockets."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading

import pytest

from handshake_lab.capture.evidence import Capture, Tier
from handshake_lab.capture.saved_syn_tier import saved_syn_handshake, saved_syn_unavailable
from handshake_lab.capture.tiers import TIERS_ENVIRONMENT_VARIABLE, best_tier, capture_handshake
from handshake_lab.kernel.saved_syn import saved_syn
from handshake_lab.kernel.segment_counts import SegmentCounts
from handshake_lab.net.clients import close, connect
from handshake_lab.net.server import LoopbackServer
from handshake_lab.timeouts import LOOPBACK_TIMEOUT

pytestmark = [
    pytest.mark.kernel,
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux only"),
]


def test_a_server_that_saves_syns_hands_each_accepted_connection_its_syn():
    with LoopbackServer(auto_accept=False, save_syn=True) as server:
        client = connect(server.address)
        try:
            syn = saved_syn(server.accept())
            assert syn.flags == "SYN" and syn.ack == 0, syn
            assert syn.src == client.getsockname() and syn.dst == server.address
            assert {"MSS", "SACK_PERM", "TS", "WS"} <= {name for name, _ in syn.options}
        finally:
            close(client)


def test_the_syn_is_read_in_the_servers_own_handler_thread_too():
    syns, done = [], threading.Event()

    def keep_syn(conn):
        syns.append(saved_syn(conn))
        done.set()

    with LoopbackServer(save_syn=True, handler=keep_syn) as server:
        client = connect(server.address)
        try:
            assert done.wait(LOOPBACK_TIMEOUT), "the handler never ran"
            assert [syn.src for syn in syns] == [client.getsockname()]
        finally:
            close(client)


def test_without_save_syn_the_error_says_what_to_do():
    with LoopbackServer(auto_accept=False) as server:
        client = connect(server.address)
        try:
            with pytest.raises(LookupError, match=r"save_syns\(listener\)"):
                saved_syn(server.accept())
        finally:
            close(client)
    with pytest.raises(TypeError, match="True or False"):
        LoopbackServer(save_syn="yes")


def test_the_counts_prove_the_syn_ack_and_ack_the_tier_does_not_show():
    syn, counts = saved_syn_handshake()
    assert syn.flags == "SYN"
    # client: SYN and ACK sent, SYN+ACK received. The accepted socket was made with the SYN
    # counted (tcp_create_openreq_child) and then got the ACK; the request socket sent the
    # SYN+ACK, so this socket sent nothing.
    assert counts == {
        "client": SegmentCounts(2, 1, 0, 0, 0),
        "server": SegmentCounts(0, 2, 0, 0, 0),
    }, counts


def test_the_saved_syn_tier_holds_only_the_real_syn_and_says_so():
    capture = capture_handshake(tiers=["saved-syn"])
    assert capture.tier is Tier.SAVED_SYN and not capture.every_segment
    assert [segment.flags for segment in capture.segments] == ["SYN"]
    assert capture.counts["client"].sent == 2 and capture.counts["server"].received == 2
    assert "counted, not shown" in capture.explanation
    assert "sent 2 segments and received 1" in capture.explanation
    assert Capture.from_json(capture.to_json()) == capture


def test_slow_motion_and_every_segment_skip_the_saved_syn_tier():
    for capture, why in (
        (
            capture_handshake(tiers=["saved-syn", "shipped"], every_segment=True),
            "every segment was asked",
        ),
        (capture_handshake(True, ["saved-syn", "shipped"]), "slow motion needs every segment"),
    ):
        assert capture.tier is Tier.SHIPPED and capture.every_segment
        assert f"the saved-SYN tier keeps the SYN alone, and {why}" in capture.explanation


def test_the_tier_order_puts_saved_syn_after_namespace(monkeypatch):
    monkeypatch.setenv(TIERS_ENVIRONMENT_VARIABLE, "saved_syn,shipped")
    choice = best_tier()
    assert choice.tier is Tier.SAVED_SYN, choice
    assert "the namespace tier is off" in choice.explanation
    assert "your own SYN" in choice.explanation
    monkeypatch.setenv(TIERS_ENVIRONMENT_VARIABLE, "live,saved-syn,shipped")
    if os.geteuid() != 0:  # as uid 65534: no packet sockets, so the saved-SYN tier
        assert capture_handshake().tier is Tier.SAVED_SYN
    assert saved_syn_unavailable() is None


# A fresh process in a user namespace of its own whose user.max_user_namespaces is 0: as on a
# host that forbids unprivileged user namespaces, the namespace child's unshare() fails
# (ENOSPC), and the machine's packet sockets need CAP_NET_RAW in the first namespace.
_NO_NAMESPACES = r"""
import ctypes, json, os, sys
uid, gid = os.geteuid(), os.getegid()
if ctypes.CDLL(None, use_errno=True).unshare(0x10000000) != 0:  # CLONE_NEWUSER
    print(json.dumps({"skip": "no user namespace here: " + os.strerror(ctypes.get_errno())}))
    sys.exit()
for name, text in (("setgroups", "deny"), ("uid_map", f"65534 {uid} 1"),
                   ("gid_map", f"65534 {gid} 1"), ("sys/user/max_user_namespaces", "0")):
    with open(f"/proc/self/{name}" if "/" not in name else f"/proc/{name}", "w") as file:
        file.write(text)
from handshake_lab.capture.tiers import best_tier, capture_handshake
choice, capture = best_tier(), capture_handshake()
print(json.dumps({"best": choice.tier.value, "why": choice.explanation,
                  "tier": capture.tier.value, "flags": [s.flags for s in capture.segments]}))
"""


def test_where_user_namespaces_are_forbidden_the_saved_syn_tier_is_chosen():
    environment = {k: v for k, v in os.environ.items() if k != TIERS_ENVIRONMENT_VARIABLE}
    completed = subprocess.run(
        [sys.executable, "-c", _NO_NAMESPACES],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=environment,
    )
    assert completed.returncode == 0, completed.stderr
    report = json.loads(completed.stdout.splitlines()[-1])
    if "skip" in report:
        choice = best_tier()  # this host forbids them already: the same question, asked here
        if choice.tier is Tier.LIVE:
            pytest.skip(report["skip"] + ", and this process captures live")
        assert choice.tier is Tier.SAVED_SYN, choice
        return
    assert report["best"] == report["tier"] == "saved-syn", report
    assert "does not allow unprivileged user namespaces" in report["why"], report
    assert report["flags"] == ["SYN"], report
