"""The command line: `python -m handshake_lab doctor | demo | states [--port N] [--json]`."""

from __future__ import annotations

import argparse
import os
import sys


def _doctor(_args: argparse.Namespace) -> int:
    from .host import doctor

    for capability in doctor():
        print(capability.line())
    return 0


def _demo(_args: argparse.Namespace) -> int:
    from .net.clients import close, connect, receive, send
    from .net.server import LoopbackServer
    from .record.recorder import Recorder

    with Recorder() as recorder, LoopbackServer(auto_accept=False) as server:
        recorder.sample()
        client = connect(server.address)
        recorder.sample()
        accepted = server.accept()
        recorder.sample()
        send(client, b"hello")
        receive(accepted)
        close(client)
        recorder.sample()
        close(accepted)
    recording = recorder.recording
    print(
        f"One real handshake on {server.host}, recorded "
        "(times from the start of the recording; states sampled from the kernel):"
    )
    print(recording.as_text())
    connected = recording.first("return", "client", "connect()")
    accept_call = recording.first("call", "listener", "accept()")
    if connected and accept_call and connected.time_ns < accept_call.time_ns:
        print("\nconnect() returned before accept() was called: the kernel did the handshake.")
    return 0


def _states(args: argparse.Namespace) -> int:
    from .kernel.lookup import tcp_sockets

    rows = tcp_sockets(args.port)
    if args.json:
        import json  # only here: the text table is the common case and json costs its import

        print(json.dumps([row.to_dict() for row in rows], indent=1))
        return 0
    print(f"{'local':<28} {'remote':<28} {'state':<12} {'queue':>5} {'inode':>8}")
    for row in rows:
        local = f"{row.local[0]}:{row.local[1]}"
        remote = f"{row.remote[0]}:{row.remote[1]}"
        queue = row.accept_queue_length if row.accept_queue_length is not None else row.rx_queue
        print(f"{local:<28} {remote:<28} {row.state.linux_name:<12} {queue:>5} {row.inode:>8}")
    print(f"{len(rows)} TCP socket(s)" + (f" on port {args.port}" if args.port else ""))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m handshake_lab", description="Watch TCP handshakes in the real kernel."
    )
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("doctor", help="what this machine can show").set_defaults(run=_doctor)
    commands.add_parser("demo", help="one recorded handshake as a text timeline").set_defaults(
        run=_demo
    )
    states = commands.add_parser("states", help="the kernel's TCP table (a small ss)")
    states.add_argument("--port", type=int, help="only sockets with this local or remote port")
    states.add_argument("--json", action="store_true", help="print JSON")
    states.set_defaults(run=_states)
    args = parser.parse_args(argv)
    try:
        code = args.run(args)
        sys.stdout.flush()  # a reader that left (`states | head`) shows here, not at exit
        return code
    except BrokenPipeError:
        # Stop quietly, as command-line tools do, and keep Python's exit flush from failing.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except (ValueError, TypeError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
