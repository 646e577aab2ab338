"""Notebook 05's second exercise: socket code whose SYN asks for small segments, judged by the
server's kernel.

The learner writes ``small_segment_client(address)``: it returns a connected socket whose SYN
asks the server to send at most `WANTED_MSS` data bytes per segment (the MSS option). `check`
runs it against a `LoopbackServer(save_syn=True)`, reads the SYN exactly as the server's kernel
received it (TCP_SAVED_SYN, no privileges needed) and the largest segment the server's kernel
will now send on that connection (its TCP_MAXSEG), and judges from those. Rules: Linux only
(TCP_SAVED_SYN); every socket is closed and the server stopped whatever the learner's code
does; hints come from ``attempts.Attempts``, more specific on each repeat, never the code.
"""

from __future__ import annotations

import socket

from ..kernel.saved_syn import saved_syn
from ..net.server import LoopbackServer
from ..timeouts import LOOPBACK_TIMEOUT
from .attempts import Attempts
from .feedback import Feedback

__all__ = ["ATTEMPTS", "WANTED_MSS", "check"]

#: The MSS the learner's SYN must carry.
WANTED_MSS = 1000
#: The learner's tries so far, kept between runs of the exercise cell.
ATTEMPTS = Attempts()

_NOT_A_SOCKET = [
    "Return the connected socket itself (a socket.socket), not what connect() returned.",
    "connect() returns None: make the socket, connect it, then `return` the socket.",
]
_NOT_CONNECTED = [
    "The socket you returned is not connected: the server's kernel never saw its SYN.",
    "Call connect(address) on the socket before you return it; a new socket sends nothing.",
]
_DEFAULT_MSS = [
    "Your SYN offered the largest segments this path allows: nothing asked for smaller ones.",
    "The MSS travels in the SYN, so it must be set before connect() sends the SYN; "
    "whatever you change afterwards comes too late for it.",
    "Look in `man 7 tcp` for the socket option about the maximum segment size, and set it "
    "at the IPPROTO_TCP level before connect().",
]
_OTHER_MSS = [
    "Your SYN asked for a different size than {wanted} bytes.",
    "The MSS counts data bytes only: the IP and TCP headers are not part of it, so ask for "
    "exactly the number of data bytes you want per segment.",
]


def _offered_mss(options) -> int | None:
    return next((value for name, value in options if name == "MSS"), None)


def check(small_segment_client, attempts: Attempts | None = None) -> Feedback:
    """Run the learner's function against a real server and judge its SYN; see the module."""
    attempts = ATTEMPTS if attempts is None else attempts
    feedback = Feedback("Your small-segment client")
    if not callable(small_segment_client):
        feedback.expect(False, "", "Pass your function itself: check(small_segment_client).")
        return feedback
    with LoopbackServer(auto_accept=False, save_syn=True) as server:
        try:
            client = small_segment_client(server.address)
        except Exception as error:  # the learner's code: report it, never crash the cell
            feedback.expect(False, "", f"your function raised {type(error).__name__}: {error}")
            return feedback
        if not isinstance(client, socket.socket):
            feedback.expect(False, "", attempts.hint("not a socket", _NOT_A_SOCKET))
            return feedback
        with client:
            try:
                client.getpeername()
            except OSError:
                feedback.expect(False, "", attempts.hint("not connected", _NOT_CONNECTED))
                return feedback
            with server.accept(timeout=LOOPBACK_TIMEOUT) as conn:
                options = saved_syn(conn).options
                offered = _offered_mss(options)
                timestamps = any(name == "TS" for name, _ in options)
                largest = conn.getsockopt(socket.IPPROTO_TCP, socket.TCP_MAXSEG)
    feedback.expect(True, "connected: the server's kernel kept your SYN", "")
    if offered == WANTED_MSS:
        kept = f"your SYN carried MSS {offered}; the server's kernel now sends at most {largest} "
        kept += "data bytes per segment (its TCP_MAXSEG)"
        if largest < offered and timestamps:
            kept += f": {offered - largest} bytes of each segment go to the timestamp option"
        feedback.expect(True, kept, "")
    elif offered == plain_mss():
        feedback.expect(False, "", attempts.hint("default mss", _DEFAULT_MSS))
    else:
        ladder = [line.format(wanted=WANTED_MSS) for line in _OTHER_MSS]
        feedback.expect(False, "", f"MSS {offered}: " + attempts.hint("other mss", ladder))
    return feedback


def plain_mss() -> int:
    """The MSS a socket with no options set offers on loopback, measured now."""
    with LoopbackServer(auto_accept=False, save_syn=True) as server:
        with socket.create_connection(server.address, timeout=LOOPBACK_TIMEOUT):
            with server.accept(timeout=LOOPBACK_TIMEOUT) as conn:
                return _offered_mss(saved_syn(conn).options)
