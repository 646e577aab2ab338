"""Does the Recorder's sampler thread catch a kernel state that lasts only 2 ms?

The state is made on purpose and timed by us: a TCP_DEFER_ACCEPT listener keeps the
server's side of a new connection in SYN-RECEIVED until the client sends, and the client
sends a set time later. The calls are made on bare sockets (not through the helpers), so
only the sampler thread can see the state. The main thread is idle meanwhile, as a
notebook is between calls: a thread busy in pure Python would hold the GIL for up to
sys.getswitchinterval() (5 ms), and no Python thread can sample during that.
Repeated many times per duration; the share caught is printed.
Bound (issue "Foundation"): every 2 ms state caught.
Run: python benchmarks/sampler_resolution.py [--trials 50]
"""

from __future__ import annotations

import argparse
import socket
import time

from handshake_lab.net.server import LoopbackServer
from handshake_lab.record.recorder import Recorder


def one_trial(duration_s: float) -> bool:
    with Recorder() as recorder, LoopbackServer(auto_accept=False, defer_accept=1) as server:
        client = socket.socket()
        try:
            recorder.track(client, "client", remote=server.address)
            client.settimeout(5)
            client.connect(server.address)
            recorder.client_port_known(client, client.getsockname())
            time.sleep(duration_s)  # hold SYN-RECEIVED this long, the main thread idle
            client.sendall(b"x")
            server.accept().close()
        finally:
            client.close()
    return "SYN_RECV" in recorder.recording.states_of("server 1")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=50)
    args = parser.parse_args()
    results = {}
    for milliseconds in (0.5, 1.0, 2.0, 5.0):
        caught = sum(one_trial(milliseconds / 1e3) for _ in range(args.trials))
        results[milliseconds] = caught
        print(f"a {milliseconds:3.1f} ms SYN-RECEIVED caught in {caught}/{args.trials} trials")
    ok = results[2.0] == args.trials
    print("OK: every 2 ms state caught" if ok else "MISSED some 2 ms states")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
