"""How often one sock_diag lookup by addresses misses a connection that is still there, at the
moment the kernel hands a closed (orphaned) socket over to its FIN-WAIT-2 entry.

Each round: a connection is made and accepted; a thread looks the server's side up by its
addresses as fast as it can; the server closes its socket (the side becomes an orphan in
FIN-WAIT-1, then, at the client's ACK, a FIN-WAIT-2 entry of its own); the client closes,
which ends it in TIME-WAIT on the client and gone on the server. Every answer from the
server side's first FIN-WAIT-1 or FIN-WAIT-2 up to the client's close is counted; an
answer of "no connection" or CLOSE in that span is a miss, since the connection was there
throughout. The lookups are made back to back, as `kernel.lookup.confirmed_states` asks a
second time, so the longest run of misses in a row says whether that second answer can be
trusted: it can while no run is longer than one. This is why the recorder and the lookups
believe a connection gone only when a second lookup says so too.
Run: python benchmarks/lookup_while_closing.py [--rounds 300]
"""

from __future__ import annotations

import argparse
import collections
import threading

from handshake_lab.kernel.lookup import ConnectionLookup
from handshake_lab.model.states import TcpState
from handshake_lab.net.clients import close, connect
from handshake_lab.net.server import LoopbackServer

_CLOSING = (TcpState.FIN_WAIT_1, TcpState.FIN_WAIT_2)
_MISSES = (None, TcpState.CLOSED)


def one_round(server: LoopbackServer, lookup: ConnectionLookup) -> tuple[collections.Counter, int]:
    """The answers to the lookups made while the server's side closed, by kind, and the
    longest run of misses in a row."""
    client = connect(server.address)
    accepted = server.accept()
    request = lookup.prepare(accepted.getsockname(), accepted.getpeername())
    answers: collections.Counter = collections.Counter()
    longest = [0]
    started, done = threading.Event(), threading.Event()

    def look() -> None:
        closing, in_a_row = False, 0
        while not done.is_set():
            (found,) = lookup.states([request])
            state = None if found is None else found[0]
            closing = closing or state in _CLOSING
            if closing:
                answers["none" if state is None else state.linux_name] += 1
                in_a_row = in_a_row + 1 if state in _MISSES else 0
                longest[0] = max(longest[0], in_a_row)
            started.set()

    looker = threading.Thread(target=look, daemon=True)
    looker.start()
    started.wait(5)
    close(accepted)  # the orphan: FIN-WAIT-1, then FIN-WAIT-2 at the client's ACK
    try:
        # Until the lookups have seen FIN-WAIT-2 a few hundred times: the hand-over is done.
        for _ in range(10_000):
            if answers["FIN_WAIT2"] >= 200:
                break
            done.wait(0.0005)
    finally:
        done.set()
        looker.join(5)
        close(client)
    return answers, longest[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=300)
    args = parser.parse_args()
    totals: collections.Counter = collections.Counter()
    rounds_with_a_miss = longest = 0
    with ConnectionLookup() as lookup, LoopbackServer(auto_accept=False) as server:
        for _ in range(args.rounds):
            answers, in_a_row = one_round(server, lookup)
            totals.update(answers)
            longest = max(longest, in_a_row)
            rounds_with_a_miss += bool(answers["none"] or answers["CLOSE"])
    print(f"closes: {args.rounds}; where a lookup missed the connection: {rounds_with_a_miss}")
    print("answers while closing:", dict(sorted(totals.items())))
    print(f"longest run of misses in a row: {longest}")


if __name__ == "__main__":
    main()
