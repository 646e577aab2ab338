"""The lab's one conversation on loopback, captured: listen, connect, accept, send, close.

``run_experiment`` is what every tier that captures runs: in this process for the live tier,
in the namespace child for the namespace tier. In slow motion the caller's ``slow_down``
slows the link during the handshake while a ``record.recorder.Recorder`` samples both ends'
kernel states (TCP_INFO for the client, a sock_diag lookup for the server's end, which no
accept() has returned yet); the samples are kept as StateSamples on the packets' clock.
Rules: every socket is closed by a context manager and every wait has a timeout from
``timeouts``; the capture is over only once the client's last ACK has been seen.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import NamedTuple

from ..model.addresses import Address
from ..model.packets import Segment
from ..model.states import TcpState
from ..net.clients import finish_connect
from ..record.events import STATE, Recording
from ..record.recorder import Recorder
from ..timeouts import LOOPBACK_TIMEOUT, SHORT_TIMEOUT
from .evidence import StateSample
from .sniffer import LoopbackSniffer

__all__ = ["ExperimentResult", "conversation_finished", "run_experiment"]

GREETING = b"hello\n"


class ExperimentResult(NamedTuple):
    """The segments of the conversation and, in slow motion, both ends' sampled states."""

    segments: list[Segment]
    states: list[StateSample]


def conversation_finished(segments: list[Segment]) -> bool:
    """True once the client has acknowledged the server's FIN (the last segment of the lab)."""
    fins = [index for index, s in enumerate(segments) if s.has("FIN")]
    if len(fins) < 2:
        return False
    last_fin = segments[fins[1]]
    return any(s.src == last_fin.dst and s.has("ACK") for s in segments[fins[1] + 1 :])


def run_experiment(
    slow_down: Callable[[], AbstractContextManager] | None = None,
) -> ExperimentResult:
    """Listen, connect, accept, send a greeting, close both ends, capturing on 'lo'.

    ``slow_down`` (namespace only) is a context manager slowing the link during the
    handshake, while both ends' states are sampled.
    """
    states: list[StateSample] = []
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
                        connection, states = _connect_sampling_states(server, client, address)
                with connection:
                    connection.settimeout(LOOPBACK_TIMEOUT)
                    client.sendall(GREETING)
                    received = b""
                    while len(received) < len(GREETING):
                        received += connection.recv(len(GREETING))
                    client.close()
                    if connection.recv(1) != b"":
                        raise RuntimeError("the server expected the client's FIN, got data")
            if not sniffer.wait_for(conversation_finished, SHORT_TIMEOUT):
                raise TimeoutError(f"the final ACK was not captured within {SHORT_TIMEOUT} s")
        return ExperimentResult(list(sniffer.segments), states)


def _connect_sampling_states(
    server: socket.socket, client: socket.socket, address: Address
) -> tuple[socket.socket, list[StateSample]]:
    """Connect and accept while a Recorder samples both ends; (connection, samples)."""
    # Read the monotonic clock first: the offset errs late, never early, so a state is never
    # placed before the packet that caused it.
    monotonic_ns = time.monotonic_ns()
    epoch_offset_ns = time.time_ns() - monotonic_ns
    with Recorder(follow_helpers=False) as recorder:
        client.setblocking(False)
        client.connect_ex(address)
        # Tracked once connect() has started, so a fresh socket's CLOSED is never sampled.
        client_lane = recorder.track(client, "client", remote=address)
        recorder.client_port_known(client, client.getsockname())
        finish_connect(client, timeout=LOOPBACK_TIMEOUT)
        # accept() returns once the server's end is ESTABLISHED; stopping samples it once more.
        connection, _ = server.accept()
    return connection, _state_samples(recorder.recording, client_lane, epoch_offset_ns)


def _state_samples(
    recording: Recording, client_lane: str, epoch_offset_ns: int
) -> list[StateSample]:
    """Each end's state changes, in epoch seconds; the other lane is the server's end."""
    samples: list[StateSample] = []
    latest: dict[str, TcpState] = {}
    for event in recording.events:
        if event.kind != STATE:
            continue
        side = "client" if event.lane == client_lane else "server"
        if latest.get(side) is not event.state:  # else accept() took it: the same state
            samples.append(((event.time_ns + epoch_offset_ns) / 1e9, side, event.state))
            latest[side] = event.state
    return samples
