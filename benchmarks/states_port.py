"""`python -m handshake_lab states --port N` against `ss` on a big TCP table (bound: 2x ss).

A learner's table can hold thousands of TIME_WAIT rows (notebook 07's load test). This script
makes that table (connect, accept, client closes first, on loopback: the rows expire 60 s
later by themselves), then times each whole command, started as a fresh process, for a port
that has a listener and one connection: `states --port N` and
`ss -tanH 'sport = :N or dport = :N'`, alternating, median of --runs. The Python commands
run as on a learner's machine, with Python's bytecode cache (kept in a temporary directory,
so the source tree stays clean); a bare interpreter start is timed too: every `python -m`
command pays it. Where ss is missing, the /proc parse, run as a command, stands in for it
and the bound is not checked. In-process, tcp_sockets(N) is timed through each reader.
Run: python benchmarks/states_port.py [--rows 14000] [--runs 15]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from recorder_busy_machine import make_time_wait_rows

import handshake_lab
from handshake_lab.kernel import lookup, sock_diag_dump
from handshake_lab.kernel.proc_tcp import read_tcp_table
from handshake_lab.net.clients import close, connect
from handshake_lab.net.server import LoopbackServer

#: The checkout this script imported: `python -m` finds the package in its working directory
#: first, so the commands run there (from another checkout they would time that one's code).
ROOT = Path(handshake_lab.__file__).resolve().parents[1]
BOUND = 2.0  # states --port N within 2x of ss, both timed as whole commands
PROC_COMMAND = (
    "import sys; from handshake_lab.kernel.proc_tcp import read_tcp_table; "
    "read_tcp_table(int(sys.argv[1]))"
)


def command_ms(command: list[str], env: dict | None = None) -> float:
    start = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, timeout=60, env=env, cwd=ROOT)
    return (time.perf_counter() - start) * 1e3


def in_process_ms(port: int, *, sock_diag: bool, calls: int = 30) -> float:
    """Median time of tcp_sockets(port) through one reader (the lookup's predicate, set)."""
    saved = lookup._sock_diag_dump_available
    lookup._sock_diag_dump_available = lambda: sock_diag
    try:
        times = []
        for _ in range(calls):
            start = time.perf_counter()
            lookup.tcp_sockets(port)
            times.append(time.perf_counter() - start)
    finally:
        lookup._sock_diag_dump_available = saved
    return statistics.median(times) * 1e3


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=14_000)
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    ss = shutil.which("ss")
    try:
        sock_diag_dump.read_port(1)
        dump_works = True
    except OSError as error:
        dump_works = False
        print(f"no sock_diag dump here ({error}): states reads /proc")
    with tempfile.TemporaryDirectory() as cache, LoopbackServer(auto_accept=False) as server:
        cached = {
            key: value for key, value in os.environ.items() if key != "PYTHONDONTWRITEBYTECODE"
        }
        cached["PYTHONPYCACHEPREFIX"] = cache
        client = connect(server.address)
        accepted = server.accept()
        port = server.port
        states = [sys.executable, "-m", "handshake_lab", "states", "--port", str(port)]
        if ss:
            reference = [ss, "-tanH", f"sport = :{port} or dport = :{port}"]
            name = "ss -tanH 'sport = :N or dport = :N'"
        else:
            reference = [sys.executable, "-c", PROC_COMMAND, str(port)]
            name = "the /proc parse, as a command"
        bare = [sys.executable, "-c", "pass"]
        commands = {
            "reference": (reference, cached),
            "states": (states, cached),
            "bare": (bare, cached),
        }
        for command, env in commands.values():
            command_ms(command, env)  # fills the bytecode cache
        make_time_wait_rows(args.rows)  # measured at once: the rows last 60 s
        rows_before = len(read_tcp_table())
        timed: dict[str, list[float]] = {key: [] for key in commands}
        for _ in range(args.runs):  # alternate, so all see the same machine load
            for key, (command, env) in commands.items():
                timed[key].append(command_ms(command, env))
        dump_ms = in_process_ms(port, sock_diag=True) if dump_works else None
        proc_ms = in_process_ms(port, sock_diag=False)
        rows_after = len(read_tcp_table())
        close(client)
        close(accepted)
    medians = {key: statistics.median(values) for key, values in timed.items()}
    ratio = medians["states"] / medians["reference"]
    print(f"TCP rows in the kernel's table: {rows_before} before, {rows_after} after timing")
    if not ss:
        print("ss is not installed: the /proc parse, as a command, stands in for it")
    lines = [
        (f"{name}:", medians["reference"]),
        ("python -m handshake_lab states --port N:", medians["states"]),
        ("  a bare interpreter start (-c pass):", medians["bare"]),
    ]
    for label, value in lines:
        print(f"{label:<46} {value:7.1f} ms (median of {args.runs})")
    if dump_ms is not None:
        print(f"{'tcp_sockets(N) in-process, sock_diag dump:':<46} {dump_ms:7.2f} ms")
    print(f"{'tcp_sockets(N) in-process, /proc parse:':<46} {proc_ms:7.2f} ms")
    floor = medians["bare"] / medians["reference"]
    print(f"states / reference: {ratio:.2f}x (bound {BOUND:g}x; a bare start alone: {floor:.2f}x)")
    if not ss:
        print("bound not checked (no ss to compare with)")
        return 0
    ok = ratio <= BOUND
    print("OK" if ok else "OVER")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
