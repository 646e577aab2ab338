"""Capture a real handshake on loopback with the best evidence this machine allows, and say which.

Tiers, best first: LIVE (a packet socket on 'lo'; root or CAP_NET_RAW), NAMESPACE (a fresh
child process in its own user + network namespace, see ``namespace_child``), RECORDING (the
capture shipped in ``handshake_lab/data``, made by ``tools/record_handshake.py``). Slow motion
slows a link with a token bucket, so it never runs on the machine's shared loopback: it uses
NAMESPACE or the slow-motion recording. ``tiers=`` or the environment variable
HANDSHAKE_LAB_CAPTURE_TIERS (e.g. "namespace,recording") restricts the tiers tried.
Rules: every socket and thread is closed by a context manager; every wait has a timeout from
``timeouts``; only segments to or from the lab's server port are kept; loopback shows each packet
twice, so the outgoing copy (PACKET_OUTGOING) is dropped. ``state_at`` (pure) reads a slow-motion
capture's sampled states at a given moment.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import os
import selectors
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

from ..kernel.proc_tcp import read_tcp_table
from ..model.packets import DecodeError, Segment, decode_frame
from ..model.pcap import read_pcap, write_pcap
from ..model.states import TcpState
from ..timeouts import (
    CAPTURE_TIMEOUT,
    LOOPBACK_TIMEOUT,
    SAMPLE_INTERVAL,
    SHORT_TIMEOUT,
    THREAD_JOIN_TIMEOUT,
)

__all__ = [
    "Capture",
    "LoopbackSniffer",
    "Tier",
    "TierChoice",
    "best_tier",
    "capture_handshake",
    "load_recording",
    "run_experiment",
    "state_at",
    "write_pcap",
]

TIERS_ENVIRONMENT_VARIABLE = "HANDSHAKE_LAB_CAPTURE_TIERS"
DATA_DIRECTORY = Path(__file__).parent.parent / "data"
ETH_P_ALL = 0x0003
PACKET_OUTGOING = 4
SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)
GREETING = b"hello\n"

StateSample = tuple[float, str, TcpState]


class Tier(enum.Enum):
    """Where a capture's packets come from, best evidence first."""

    LIVE = "live"
    NAMESPACE = "namespace"
    RECORDING = "recording"


@dataclass(frozen=True)
class Capture:
    """A captured handshake: the segments, where they come from and why, and sampled states.

    ``states`` holds (epoch time, 'client' or 'server', TcpState) whenever an end's state
    changed (slow motion only); ``recorded_on`` is (date, kernel release) for a recording.
    """

    segments: list[Segment]
    tier: Tier
    explanation: str
    states: list[StateSample] = field(default_factory=list)
    recorded_on: tuple[str, str] | None = None


def state_at(states: Iterable[StateSample], side: str, time: float) -> TcpState | None:
    """The state ``side`` ('client' or 'server') was last seen in at or before ``time``.

    ``states`` are a Capture's (time, side, TcpState) samples, each taken when a state changed;
    None if that side had not been sampled yet.
    """
    seen = [(t, state) for t, who, state in states if who == side and t <= time]
    return max(seen, key=lambda sample: sample[0])[1] if seen else None


class TierChoice(NamedTuple):
    tier: Tier
    explanation: str


class LoopbackSniffer(AbstractContextManager):
    """A thread that keeps every frame on 'lo' to or from one TCP port, while the block runs.

    Needs CAP_NET_RAW in the network namespace (PermissionError otherwise). ``frames`` holds
    (kernel timestamp, frame); ``segments`` the same decoded. Leaving the block stops and joins
    the thread, closes its sockets and re-raises any error the thread met.
    """

    def __init__(self, port: int, interface: str = "lo") -> None:
        self.port = port
        self.interface = interface
        self.frames: list[tuple[float, bytes]] = []
        self.segments: list[Segment] = []
        self._changed = threading.Condition()
        self._error: BaseException | None = None
        self._sockets: list[socket.socket] = []

    def __enter__(self) -> LoopbackSniffer:
        self._packets = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
        self._sockets.append(self._packets)
        try:
            self._packets.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 * 1024 * 1024)
            self._packets.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
            self._packets.bind((self.interface, 0))
            self._wake_reader, self._wake_writer = socket.socketpair()
            self._sockets += [self._wake_reader, self._wake_writer]
            self._thread = threading.Thread(target=self._run, name="loopback-sniffer", daemon=True)
            self._thread.start()
        except BaseException:
            self._close_sockets()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        try:
            self._wake_writer.send(b"x")
            self._thread.join(THREAD_JOIN_TIMEOUT)
            if self._thread.is_alive():
                raise RuntimeError("the capture thread did not stop; restart the kernel")
        finally:
            self._close_sockets()
        if self._error is not None and exc_info[0] is None:
            raise self._error

    def _close_sockets(self) -> None:
        for sock in self._sockets:
            sock.close()

    def wait_for(self, predicate: Callable[[list[Segment]], bool], timeout: float) -> bool:
        """Wait until ``predicate(segments so far)`` holds; False after ``timeout`` seconds."""
        with self._changed:
            return self._changed.wait_for(lambda: predicate(self.segments), timeout)

    def _run(self) -> None:
        try:
            with selectors.DefaultSelector() as selector:
                selector.register(self._packets, selectors.EVENT_READ)
                selector.register(self._wake_reader, selectors.EVENT_READ)
                while True:
                    ready = {key.fileobj for key, _ in selector.select(CAPTURE_TIMEOUT)}
                    if not ready or self._wake_reader in ready:
                        break
                    self._read_one()
            self._packets.setblocking(False)
            while self._read_one():  # what arrived before the stop was asked for
                pass
        except BaseException as error:  # handed back to the caller in __exit__
            self._error = error

    def _read_one(self) -> bool:
        try:
            frame, ancillary, _, address = self._packets.recvmsg(65536, socket.CMSG_SPACE(16))
        except BlockingIOError:
            return False
        if address[2] == PACKET_OUTGOING:
            return True
        timestamp = time.time()
        for level, kind, data in ancillary:
            if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS and len(data) >= 16:
                seconds, nanoseconds = struct.unpack_from("qq", data)
                timestamp = seconds + nanoseconds / 1e9
        try:
            segment = decode_frame(frame, timestamp)
        except DecodeError:
            return True  # not TCP over IP: not ours
        if self.port in (segment.src_port, segment.dst_port):
            with self._changed:
                self.frames.append((timestamp, frame))
                self.segments.append(segment)
                self._changed.notify_all()
        return True


def _conversation_finished(segments: list[Segment]) -> bool:
    """True once the client has acknowledged the server's FIN (the last segment of the lab)."""
    fins = [index for index, s in enumerate(segments) if s.has("FIN")]
    if len(fins) < 2:
        return False
    last_fin = segments[fins[1]]
    return any(s.src == last_fin.dst and s.has("ACK") for s in segments[fins[1] + 1 :])


def _read_tcp_states(client_port: int, server_port: int) -> dict[str, TcpState]:
    """The client's and server's rows of /proc/net/tcp (the listener's LISTEN if no row yet)."""
    states: dict[str, TcpState] = {}
    for row in read_tcp_table(server_port):
        local_port, remote_port, state = row.local[1], row.remote[1], row.state
        if (local_port, remote_port) == (client_port, server_port):
            states["client"] = state
        elif (local_port, remote_port) == (server_port, client_port):
            states["server"] = state
        elif local_port == server_port and state is TcpState.LISTEN:
            states.setdefault("server", state)
    return states


def _connect_sampling_states(client: socket.socket, address: tuple[str, int]) -> list[StateSample]:
    """A non-blocking connect, sampling both ends' states until both are ESTABLISHED."""
    samples: list[StateSample] = []
    latest: dict[str, TcpState] = {}
    client.setblocking(False)
    client.connect_ex(address)
    client_port = client.getsockname()[1]
    deadline = time.monotonic() + LOOPBACK_TIMEOUT
    while set(latest.values()) != {TcpState.ESTABLISHED} or len(latest) < 2:
        if time.monotonic() > deadline:
            raise TimeoutError(f"the slowed handshake did not finish in {LOOPBACK_TIMEOUT} s")
        states = _read_tcp_states(client_port, address[1])
        now = time.time()
        for side, state in sorted(states.items()):
            if latest.get(side) is not state:
                samples.append((now, side, state))
                latest[side] = state
        time.sleep(SAMPLE_INTERVAL)  # sampling period, not ordering
    with selectors.DefaultSelector() as selector:
        selector.register(client, selectors.EVENT_WRITE)
        if not selector.select(LOOPBACK_TIMEOUT):
            raise TimeoutError(f"connect() did not finish in {LOOPBACK_TIMEOUT} s")
    error = client.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
    if error:
        raise OSError(error, f"connect: {os.strerror(error)}")
    client.settimeout(LOOPBACK_TIMEOUT)
    return samples


def run_experiment(
    slow_down: Callable[[], AbstractContextManager] | None = None,
) -> tuple[list[tuple[float, bytes]], list[StateSample]]:
    """Listen, connect, accept, send a greeting, close both ends, capturing on 'lo'.

    ``slow_down`` (namespace only) is a context manager slowing the link during the handshake,
    while both ends' states are sampled. Returns the frames and the state samples.
    """
    samples: list[StateSample] = []
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as server:
        server.settimeout(LOOPBACK_TIMEOUT)
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        address = server.getsockname()
        with LoopbackSniffer(address[1]) as sniffer:
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as client:
                if slow_down is None:
                    client.settimeout(LOOPBACK_TIMEOUT)
                    client.connect(address)
                    connection, _ = server.accept()
                else:
                    with slow_down():
                        samples = _connect_sampling_states(client, address)
                        connection, _ = server.accept()
                with connection:
                    connection.settimeout(LOOPBACK_TIMEOUT)
                    client.sendall(GREETING)
                    received = b""
                    while len(received) < len(GREETING):
                        received += connection.recv(len(GREETING))
                    client.close()
                    if connection.recv(1) != b"":
                        raise RuntimeError("the server expected the client's FIN, got data")
            if not sniffer.wait_for(_conversation_finished, SHORT_TIMEOUT):
                raise TimeoutError(f"the final ACK was not captured within {SHORT_TIMEOUT} s")
    return sniffer.frames, samples


def _allowed_tiers(tiers: Iterable[Tier | str] | None) -> tuple[set[Tier], str | None]:
    if tiers is None:
        setting = os.environ.get(TIERS_ENVIRONMENT_VARIABLE, "").strip()
        if not setting:
            return set(Tier), None
        tiers = [name.strip() for name in setting.split(",") if name.strip()]
        source = f"{TIERS_ENVIRONMENT_VARIABLE}={setting}"
    else:
        source = "the tiers= argument"
    try:
        allowed = {tier if isinstance(tier, Tier) else Tier(tier.lower()) for tier in tiers}
    except ValueError:
        names = ", ".join(tier.value for tier in Tier)
        raise ValueError(f"{source} names an unknown tier; use some of: {names}") from None
    return allowed, source


def _live_unavailable() -> str | None:
    """Why this process cannot capture on the real loopback, or None if it can."""
    if not hasattr(socket, "AF_PACKET"):
        return f"live capture needs Linux packet sockets, which {sys.platform} does not have"
    try:
        probe = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    except PermissionError:
        return "live capture needs root or CAP_NET_RAW"
    except OSError as error:
        return f"live capture failed to open a packet socket ({error.strerror})"
    probe.close()
    return None


def _run_child(arguments: list[str]) -> dict:
    """Run ``capture_namespace`` in a fresh process and return its JSON report."""
    if sys.platform != "linux":
        return {"ok": False, "stage": "platform", "error": f"{sys.platform} has no namespaces"}
    environment = dict(os.environ)
    package_parent = str(Path(__file__).resolve().parent.parent.parent)
    environment["PYTHONPATH"] = os.pathsep.join(
        filter(None, [package_parent, environment.get("PYTHONPATH")])
    )
    command = [sys.executable, "-m", "handshake_lab.capture.namespace_child", *arguments]
    try:
        completed = subprocess.run(
            command,
            capture_output=True,
            text=True,
            timeout=CAPTURE_TIMEOUT,
            env=environment,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return {"ok": False, "stage": "experiment", "error": f"no answer in {CAPTURE_TIMEOUT} s"}
    except OSError as error:  # e.g. this Python cannot be started again by this user
        return {"ok": False, "stage": "experiment", "error": f"cannot start {command[0]}: {error}"}
    lines = completed.stdout.strip().splitlines()
    try:
        return json.loads(lines[-1])
    except (IndexError, json.JSONDecodeError):
        last_error = (completed.stderr.strip().splitlines() or ["no output"])[-1]
        return {"ok": False, "stage": "experiment", "error": last_error}


def _namespace_unavailable(report: dict) -> str:
    if report.get("stage") == "platform":
        return f"private network namespaces exist only on Linux, not on {sys.platform}"
    if report.get("stage") == "namespace":
        return (
            "this machine does not allow unprivileged user namespaces "
            f"({report.get('error')}; containers and Ubuntu 24.04 often forbid them)"
        )
    return f"the namespace experiment failed ({report.get('error')})"


def _sentence(clauses: list[str], outcome: str) -> str:
    """'Reason one; reason two, so outcome.' with a capital letter."""
    text = "; ".join(clauses) + ", so " + outcome if clauses else outcome
    return text[0].upper() + text[1:] + "."


def _no_tier_left(reasons: list[str]) -> RuntimeError:
    text = "; ".join(reasons) + "; and the recording tier is off too: allow at least 'recording'."
    return RuntimeError(text[0].upper() + text[1:])


def _namespace_allowed() -> str:
    if os.geteuid() == 0:
        return "this process may create network namespaces"
    return "this kernel allows unprivileged user namespaces"


_SLOW_MOTION_NOT_LIVE = "slow motion never slows the machine's own loopback, which others share"


def best_tier(
    tiers: Iterable[Tier | str] | None = None, *, slow_motion: bool = False
) -> TierChoice:
    """Which tier capture_handshake() would use, and why, without capturing (for the doctor)."""
    allowed, source = _allowed_tiers(tiers)
    reasons = []
    if Tier.LIVE in allowed and not slow_motion:
        reason = _live_unavailable()
        if reason is None:
            return TierChoice(
                Tier.LIVE,
                "This process may open packet sockets (root or CAP_NET_RAW), so handshakes "
                "are captured live on the loopback interface.",
            )
        reasons.append(reason)
    else:
        reasons.append(_SLOW_MOTION_NOT_LIVE if slow_motion else f"live capture is off ({source})")
    if Tier.NAMESPACE in allowed:
        report = _run_child(["--probe"])
        if report.get("ok"):
            outcome = "handshakes run in a private network namespace"
            return TierChoice(Tier.NAMESPACE, _sentence([*reasons, _namespace_allowed()], outcome))
        reasons.append(_namespace_unavailable(report))
    else:
        reasons.append(f"the namespace tier is off ({source})")
    if Tier.RECORDING not in allowed:
        raise _no_tier_left(reasons)
    return TierChoice(
        Tier.RECORDING, _sentence(reasons, "the recording shipped with the lab is shown")
    )


def load_recording(slow_motion: bool = False) -> Capture:
    """The capture shipped in handshake_lab/data, with the date and kernel it was made on."""
    stem = "handshake_slow" if slow_motion else "handshake"
    metadata = json.loads((DATA_DIRECTORY / f"{stem}.json").read_text())
    recorded_on = (metadata["recorded_on"], metadata["kernel"])
    date, kernel = recorded_on
    states = [(t, side, TcpState[name]) for t, side, name in metadata.get("states", [])]
    return Capture(
        segments=read_pcap(DATA_DIRECTORY / f"{stem}.pcap"),
        tier=Tier.RECORDING,
        explanation=f"This is the recording shipped with the lab, made on {date} with Linux "
        f"{kernel} ({metadata['tier']} tier).",
        states=states,
        recorded_on=recorded_on,
    )


def capture_handshake(
    slow_motion: bool = False, tiers: Iterable[Tier | str] | None = None
) -> Capture:
    """Run a real handshake (listen, connect, accept, send, close) and capture it.

    Uses the best tier allowed and available and says which in ``explanation``. With
    ``slow_motion`` the handshake runs on a slowed private loopback (~0.4 s between segments)
    and ``states`` samples both ends in between.
    """
    allowed, source = _allowed_tiers(tiers)
    reasons = []
    if Tier.LIVE in allowed and not slow_motion:
        reason = _live_unavailable()
        if reason is None:
            frames, _ = run_experiment()
            return Capture(
                segments=[decode_frame(frame, t) for t, frame in frames],
                tier=Tier.LIVE,
                explanation="This process may open packet sockets (root or CAP_NET_RAW), so the "
                "handshake was captured live on the loopback interface.",
            )
        reasons.append(reason)
    else:
        reasons.append(_SLOW_MOTION_NOT_LIVE if slow_motion else f"live capture is off ({source})")
    if Tier.NAMESPACE in allowed:
        report = _run_child(["--slow-motion"] if slow_motion else [])
        if report.get("ok"):
            outcome = "the handshake ran in a private network namespace"
            if slow_motion:
                outcome += " whose loopback was slowed to about 1.4 kbit/s"
            return Capture(
                segments=[decode_frame(bytes.fromhex(frame), t) for t, frame in report["frames"]],
                tier=Tier.NAMESPACE,
                explanation=_sentence([*reasons, _namespace_allowed()], outcome),
                states=[(t, side, TcpState[name]) for t, side, name in report["states"]],
            )
        reasons.append(_namespace_unavailable(report))
    else:
        reasons.append(f"the namespace tier is off ({source})")
    if Tier.RECORDING not in allowed:
        raise _no_tier_left(reasons)
    recording = load_recording(slow_motion)
    date, kernel = recording.recorded_on
    outcome = f"this is the recording shipped with the lab, made on {date} with Linux {kernel}"
    return dataclasses.replace(recording, explanation=_sentence(reasons, outcome))
