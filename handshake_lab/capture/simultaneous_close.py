"""Simultaneous close: both ends send a FIN before either has the other's; both pass CLOSING.

On loopback a FIN is delivered within the sender's own call, so two FINs never cross by
themselves. The lab makes them cross with a classic BPF socket filter (SO_ATTACH_FILTER) on
both sockets: while it drops every segment carrying FIN, both ends send theirs with
shutdown(SHUT_WR) (the FIN close() sends; the lab keeps the descriptors to change the
filters). Both sit in FIN-WAIT-1. Then the filter is swapped for one that drops segments
*without* FIN: both retransmission timers, armed in the same clock tick with the same RTO,
fire together, each FIN reaches a peer still in FIN-WAIT-1, and tcp_fin() moves both to
CLOSING (net/ipv4/tcp_input.c). Their ACKs are dropped, so CLOSING lasts until the next
retransmission; the filters are removed once both have left FIN-WAIT-1, and each end goes to
TIME-WAIT when its FIN is acknowledged. Both hold TIME-WAIT.

Where: SO_ATTACH_FILTER needs root, or a process that is root of its own user namespace
(EPERM otherwise), so without root the experiment runs in a fresh child process in a private
user + network namespace (``namespace_child.enter_private_network``), run as
``python -m handshake_lab.capture.simultaneous_close``, which prints one line of JSON. Where
neither is allowed, `simultaneous_close` returns the recording shipped in ``data/``, made by
``python -m handshake_lab.capture.simultaneous_close --record FILE`` and labelled with its date
and kernel. Rules: sockets and filters are always released; every wait is bounded.
"""

from __future__ import annotations

import json
import platform
import socket
import sys
import time
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from .. import platforms
from ..kernel.lookup import ConnectionLookup, confirmed_states
from ..model.states import TcpState
from ..net.clients import close, connect
from ..net.server import LoopbackServer
from ..timeouts import KERNEL_TIMER_TIMEOUT, poll_until
from .child_process import report_from_private_network, run_json_child
from .socket_filter import FIN, FlagsRule, attach, detach, unavailable_here

__all__ = ["SimultaneousClose", "StateChange", "run_simultaneous_close", "simultaneous_close"]

RECORDING = Path(__file__).resolve().parent.parent / "data" / "simultaneous_close.json"

_DROP_FIN = FlagsRule(FIN, FIN)  # socket_filter: classic BPF on the TCP header's flags
_DROP_ALL_BUT_FIN = FlagsRule(FIN, FIN, drop_matching=False)
_TRIES = 3  # a try whose FINs did not cross (timers a tick apart) is run again
_SAMPLE_INTERVAL = 0.0005
_MODULE = "handshake_lab.capture.simultaneous_close"  # not __name__: "__main__" in the child


@dataclass(frozen=True)
class StateChange:
    """The two ends' states from `seconds` after the FINs were sent (None: not in the kernel)."""

    seconds: float
    client: TcpState | None
    server: TcpState | None


@dataclass(frozen=True)
class SimultaneousClose:
    """What both ends went through, and where that evidence comes from (one sentence)."""

    changes: tuple[StateChange, ...]
    source: str  # "live", "namespace" or "recording"
    explanation: str

    def states_of(self, end: str) -> list[TcpState | None]:
        """The states one end ("client" or "server") went through, in order."""
        if end not in ("client", "server"):
            raise ValueError(f"end must be 'client' or 'server', not {end!r}")
        states: list[TcpState | None] = []
        for change in self.changes:
            state = getattr(change, end)
            if not states or states[-1] is not state:
                states.append(state)
        return states

    @property
    def both_closing(self) -> bool:
        return all(TcpState.CLOSING in self.states_of(end) for end in ("client", "server"))

    def as_text(self) -> str:
        lines = [f"{'time':>9}  {'client':<12}{'server':<12}"]
        for change in self.changes:
            client, server = _shown(change.client), _shown(change.server)
            lines.append(f"{change.seconds * 1000:6.1f} ms  {client:<12}{server}")
        return "\n".join(lines)

    def to_json(self) -> list:
        return [[round(c.seconds, 6), _name(c.client), _name(c.server)] for c in self.changes]

    @classmethod
    def from_json(cls, rows: list, source: str, explanation: str) -> SimultaneousClose:
        changes = tuple(StateChange(row[0], _state(row[1]), _state(row[2])) for row in rows)
        return cls(changes, source, explanation)


def _name(state: TcpState | None) -> str:
    return "gone" if state is None else state.linux_name


def _shown(state: TcpState | None) -> str:
    return "gone" if state is None else str(state)


def _state(name: str) -> TcpState | None:
    return None if name == "gone" else TcpState.from_name(name)


def run_simultaneous_close() -> tuple[StateChange, ...]:
    """Run the experiment here (see the module); PermissionError if filters are not allowed."""
    for _ in range(_TRIES):
        changes = _one_try()
        result = SimultaneousClose(changes, "live", "")
        if result.both_closing:
            break
    return changes


def _one_try() -> tuple[StateChange, ...]:
    with LoopbackServer(auto_accept=False) as server, ConnectionLookup() as lookup:
        client = connect(server.address)
        served = server.accept()
        ends = (client, served)
        try:
            for sock in ends:
                attach(sock, _DROP_FIN)
            client_end = client.getsockname()[:2]
            requests = [
                lookup.prepare(client_end, server.address),
                lookup.prepare(server.address, client_end),
            ]
            started = time.monotonic()
            for sock in ends:  # both FINs leave, and both are dropped
                sock.shutdown(socket.SHUT_WR)
            for sock in ends:  # now only FINs pass: the retransmissions cross
                attach(sock, _DROP_ALL_BUT_FIN)
            changes: list[StateChange] = []
            detached = False

            def both_in_time_wait() -> bool:
                nonlocal detached
                states = tuple(confirmed_states(lookup, requests))
                if not changes or (changes[-1].client, changes[-1].server) != states:
                    changes.append(StateChange(time.monotonic() - started, *states))
                if not detached and TcpState.FIN_WAIT_1 not in states:
                    detach(ends)  # let the next retransmission's ACK through
                    detached = True
                return states == (TcpState.TIME_WAIT, TcpState.TIME_WAIT)

            poll_until(both_in_time_wait, timeout=KERNEL_TIMER_TIMEOUT, interval=_SAMPLE_INTERVAL)
            return tuple(changes)
        finally:
            detach(ends)
            for sock in ends:
                close(sock)


# -- where it runs: here, in a private namespace, or the recording ----------------------------
def simultaneous_close() -> SimultaneousClose:
    """Run the experiment with the best evidence this machine allows, and say which and why."""
    here = unavailable_here()
    if not here:
        try:
            return SimultaneousClose(
                run_simultaneous_close(),
                "live",
                "This process may attach socket filters, so it ran here.",
            )
        except PermissionError:
            here = "socket filters need root here (EPERM)"
    rows, problem = _run_in_namespace()
    if rows is not None:
        return SimultaneousClose.from_json(
            rows,
            "namespace",
            f"As {here}, the experiment ran in a private user + network namespace, where this "
            "process is root of its own loopback.",
        )
    recorded = json.loads(RECORDING.read_text())
    return SimultaneousClose.from_json(
        recorded["changes"],
        "recording",
        f"As {here} and {problem}, this is a recording made by this lab's own tool on "
        f"{recorded['recorded_on']} (Linux {recorded['kernel']}).",
    )


def _run_in_namespace() -> tuple[list | None, str]:
    """The child's rows, or None and why it could not run (a clause)."""
    if not platforms.is_linux():
        return None, f"{platforms.name()} has no network namespaces"
    report = run_json_child(_MODULE)
    if report["ok"]:
        return report["changes"], ""
    if report.get("stage") == "experiment":
        return None, f"the experiment failed in the namespace ({report['error']})"
    return None, f"this machine does not allow a private user namespace ({report['error']})"


def main(argv: list[str]) -> int:
    """The child: enter a private namespace, run, print one JSON line. --record FILE: record."""
    if argv[:1] == ["--record"] and len(argv) == 2:
        result = simultaneous_close()
        if result.source == "recording":
            print("cannot record: this machine cannot run the experiment", file=sys.stderr)
            return 1
        recording = {
            "what": "states of both ends in a simultaneous close (handshake_lab)",
            "how": f"python -m {_MODULE} --record FILE ({result.source})",
            "recorded_on": date.today().isoformat(),
            "kernel": platform.release(),
            "changes": result.to_json(),
        }
        Path(argv[1]).write_text(json.dumps(recording) + "\n")
        return 0
    return report_from_private_network(
        lambda: {"changes": SimultaneousClose(run_simultaneous_close(), "", "").to_json()}
    )


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
