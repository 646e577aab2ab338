"""The platform asked in one place, and HANDSHAKE_LAB_PLATFORM, which simulates macOS and Windows.

Under the switch every Linux-only reader must say it is unavailable, naming the platform, and
the states must come from psutil as they do there: from this process's sockets on macOS
(which lists other processes' only to root), from the whole system's on Windows.
"""

from __future__ import annotations

import re
import socket
import sys

import pytest

from handshake_lab import platforms
from handshake_lab.capture import saved_syn_tier, socket_filter, tiers
from handshake_lab.capture.socket_filter import SYN, FlagsRule
from handshake_lab.host import doctor, what_this_machine_shows
from handshake_lab.kernel import defer_accept, lookup, saved_syn, sysctls, tcp_info
from handshake_lab.kernel.lookup import connection_state, socket_state, tcp_sockets
from handshake_lab.kernel.segment_counts import read_counts, segment_counts
from handshake_lab.kernel.sock_diag import SockDiag
from handshake_lab.model.states import TcpState
from handshake_lab.net.clients import close, connect, start_connect
from handshake_lab.net.server import LoopbackServer
from handshake_lab.net.syn_retry_measurement import measure_syn_retries

pytestmark = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="only Linux simulates another platform"
)

NAMES = {"darwin": "macOS", "win32": "Windows"}


@pytest.fixture(params=["darwin", "windows"])
def simulated(request, monkeypatch) -> str:
    """The platform the switch simulates for the test ('darwin' or 'win32')."""
    monkeypatch.setenv(platforms.SWITCH, request.param)
    return platforms.current()


@pytest.mark.parametrize(
    ("value", "current", "name"),
    [
        ("", "linux", "Linux"),
        ("linux", "linux", "Linux"),
        ("darwin", "darwin", "macOS (simulated on Linux)"),
        (" MacOS ", "darwin", "macOS (simulated on Linux)"),
        ("windows", "win32", "Windows (simulated on Linux)"),
        ("win32", "win32", "Windows (simulated on Linux)"),
    ],
)
def test_the_switch_chooses_the_platform(monkeypatch, value, current, name):
    monkeypatch.setenv(platforms.SWITCH, value)
    assert platforms.current() == current
    assert platforms.is_linux() is (current == "linux")
    assert platforms.simulated() is (current != "linux")
    assert platforms.name() == name
    assert platforms.name(plain=True) == name.removesuffix(" (simulated on Linux)")


def test_unset_it_is_the_platform_python_runs_on(monkeypatch):
    monkeypatch.delenv(platforms.SWITCH, raising=False)
    assert (platforms.current(), platforms.real(), platforms.simulated()) == ("linux",) * 2 + (
        False,
    )


def test_an_unknown_platform_is_refused_with_the_ones_to_use(monkeypatch):
    monkeypatch.setenv(platforms.SWITCH, "freebsd")
    with pytest.raises(ValueError, match="set it to darwin, windows or linux, or unset it"):
        platforms.current()


def test_only_linux_simulates_another_platform(monkeypatch):
    monkeypatch.setattr(platforms.sys, "platform", "darwin")
    monkeypatch.setenv(platforms.SWITCH, "windows")
    with pytest.raises(ValueError, match="only Linux can simulate another platform"):
        platforms.current()
    monkeypatch.setenv(platforms.SWITCH, "macos")  # naming the platform it runs on is fine
    assert (platforms.current(), platforms.simulated(), platforms.name()) == (
        "darwin",
        False,
        "macOS",
    )


def test_every_linux_only_reader_says_it_is_unavailable(simulated):
    assert not tcp_info.has_tcp_info()
    assert not SockDiag.available()
    assert not defer_accept.available()
    for predicate in (
        lookup._sock_diag_available,
        lookup._sock_diag_dump_available,
        lookup._proc_tcp_available,
        lookup._tcp_info_available,
    ):
        assert not predicate(), predicate.__name__
    assert sysctls.kernel_settings() == sysctls.KernelSettings(*[None] * 7)
    name = NAMES[simulated]
    for why in (
        saved_syn_tier.saved_syn_unavailable(),
        tiers._live_unavailable(),
        tiers._namespace_unavailable(tiers._run_namespace_child([])),
    ):
        assert why and name in why, why


def test_each_linux_only_call_raises_an_error_that_names_the_platform(simulated):
    name = NAMES[simulated]
    with LoopbackServer(auto_accept=False) as server, socket.socket() as probe:
        client = connect(server.address)
        try:
            calls = {
                "segment_counts": (lambda: segment_counts(client), OSError),
                "require_linux": (saved_syn.require_linux, OSError),
                "syn_retry_schedule": (sysctls.syn_retry_schedule, NotImplementedError),
                "measure_syn_retries": (lambda: measure_syn_retries(1, 1.0), OSError),
                "set_defer_accept": (lambda: defer_accept.set_defer_accept(probe, 1), OSError),
                "accept_queue": (lambda: tcp_info.accept_queue(server.listener), Exception),
                "attach": (lambda: socket_filter.attach(probe, FlagsRule.exactly(SYN)), OSError),
            }
            for call, error in calls.values():
                with pytest.raises(error, match=name):
                    call()
            assert read_counts(client) is None  # the recorder's reading: nothing, no error
        finally:
            close(client)
    with pytest.raises(OSError, match=f"TCP_DEFER_ACCEPT is Linux's; {name}"):
        with LoopbackServer(defer_accept=5):
            pass


def test_the_doctor_reports_the_simulated_platform(simulated):
    report = {capability.name: capability for capability in doctor()}
    name = NAMES[simulated]
    assert not report["platform"].available
    assert f"makes the lab behave as on {name}" in report["platform"].detail
    assert "/proc/net/tcp" not in report and "sock_diag" not in report
    assert report["psutil"].available
    assert ("this process's" if simulated == "darwin" else "the system's") in report[
        "psutil"
    ].detail
    for linux_only in ("TCP_INFO", "TCP_DEFER_ACCEPT", "SYN retries"):
        assert not report[linux_only].available and name in report[linux_only].detail
    assert not any(capability.tier for capability in report.values())  # no capture tiers
    summary = what_this_machine_shows(list(report.values()))
    if simulated == "darwin":
        assert "Socket states: the states of your own sockets only" in summary, summary
    else:
        assert "Socket states: the TCP states psutil lists for the whole system" in summary
    assert "Packets: a capture recorded with the lab's own tool" in summary, summary


def test_states_come_from_psutil_as_on_that_platform(simulated):
    with LoopbackServer(auto_accept=False) as server:
        client = connect(server.address)
        try:
            local = client.getsockname()[:2]
            assert socket_state(client) is TcpState.ESTABLISHED
            assert connection_state(local, server.address) is TcpState.ESTABLISHED
            # The server's side, finished but not accepted: no process holds it yet, so a
            # list of this process's sockets (macOS) has no row for it.
            not_accepted = connection_state(server.address, local)
            listed = {(row.local, row.remote) for row in tcp_sockets(server.port)}
            if simulated == "darwin":
                assert not_accepted is None
                assert (server.address, local) not in listed
            else:
                assert not_accepted is TcpState.ESTABLISHED
                assert (server.address, local) in listed
            conn = server.accept()
            try:
                assert connection_state(server.address, local) is TcpState.ESTABLISHED
            finally:
                close(conn)
        finally:
            close(client)


def test_an_open_socket_no_list_has_is_closed(simulated):
    # Created, or bound without listen() or connect(): in no connection table, RFC 9293's
    # CLOSED, which is what Linux's TCP_INFO reports for it too.
    with socket.socket() as fresh, socket.socket() as bound:
        bound.bind(("127.0.0.1", 0))
        assert socket_state(fresh) is socket_state(bound) is TcpState.CLOSED
        bound.listen()
        assert socket_state(bound) is TcpState.LISTEN


def test_a_listener_is_told_from_the_connections_it_accepted(simulated):
    # The accepted socket shares the listener's local address; only the remote end (none for
    # the listener) tells the two apart.
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        client = connect(listener.getsockname())
        try:
            conn, _ = listener.accept()
            with conn:
                assert socket_state(conn) is TcpState.ESTABLISHED
                assert socket_state(listener) is TcpState.LISTEN
        finally:
            close(client)


def test_scenarios_that_show_linux_features_are_refused_with_the_ones_to_choose(simulated):
    from handshake_lab import Stepper
    from handshake_lab.stepper.scenarios import SCENARIOS, scenarios_here

    assert set(scenarios_here()) == set(SCENARIOS) - {"full-queue", "defer-accept"}
    with pytest.raises(ValueError, match="TCP_DEFER_ACCEPT.*choose one of basic"):
        Stepper("defer-accept")


def test_the_stepper_steps_through_the_handshake_without_tcp_info(simulated):
    from handshake_lab import Stepper

    with Stepper("basic", capture_packets=False) as stepper:
        stepper.step()
        connected = stepper.step()
        accepted = stepper.step()
    assert connected.accept_queue is None and connected.segments_of("client") is None
    assert connected.state_of("client") is TcpState.ESTABLISHED, connected.as_text()
    if simulated == "darwin":  # this process's own sockets: the unaccepted end is not listed
        assert connected.state_of("server 1") is None, connected.as_text()
        pattern = r"server 1\s+not listed here\s+no process holds it yet"
        assert re.search(pattern, connected.as_text()), connected.as_text()
    else:
        assert connected.state_of("server 1") is TcpState.ESTABLISHED, connected.as_text()
    assert accepted.state_of("listener") is TcpState.LISTEN, accepted.as_text()
    from handshake_lab.show.stepper_widget import socket_table_html

    caption = f"accept queue: Linux shows it (TCP_INFO); {NAMES[simulated]} (simulated on Linux)"
    assert caption in socket_table_html(accepted)
    assert accepted.state_of("server 1") is TcpState.ESTABLISHED, accepted.as_text()


def test_experiments_that_need_socket_filters_show_their_recordings(simulated):
    from handshake_lab.capture.lost_segments_evidence import capture_with_loss
    from handshake_lab.capture.simultaneous_close import simultaneous_close

    lost = capture_with_loss("syn")
    closing = simultaneous_close()
    assert lost.tier.value == "shipped" and closing.source == "recording"
    for explanation in (lost.explanation, closing.explanation):
        assert "socket filters (so_attach_filter) are linux's" in explanation.lower(), explanation
        assert "recording made by this lab's own tool" in explanation, explanation


def test_a_connect_still_in_progress_is_syn_sent(simulated):
    # No peer name yet, and not a listener: the row with the socket's own port is its own.
    # listen(0) holds one finished connection on Linux, so the second client's SYN is dropped.
    with LoopbackServer(backlog=0, auto_accept=False) as server:
        first = connect(server.address)
        waiting = start_connect(server.address)
        try:
            assert socket_state(first) is TcpState.ESTABLISHED
            assert socket_state(waiting) is TcpState.SYN_SENT
        finally:
            close(first)
            close(waiting)
