"""Notebook 01's exercise: the learner writes an echo handler; `check` runs it for real.

`check(handler)` serves `handler` from a LoopbackServer and talks to it with a real client:
two short messages, one message larger than a single recv(), then the client closes. Every
wait is bounded; whatever the handler does (answers wrongly, returns early, raises, loops on
after the client closed) becomes one specific line of Feedback, and every socket and thread
is gone when `check` returns. (A handler stuck outside its socket, in a sleep say, is reported
after the server's join timeout; its thread cannot be stopped from outside.)
"""

from __future__ import annotations

import contextlib
import inspect
import selectors
import socket
import threading

from ..net.clients import connect
from ..net.server import LoopbackServer
from ..timeouts import SHORT_TIMEOUT
from .feedback import Feedback

#: How long the client waits for an echo before it says nothing came back. On loopback an
#: answer takes microseconds; a second is generous yet keeps a wrong handler's check quick.
ANSWER_TIMEOUT = 1.0

#: Bytes that are not text (every byte value): an echo server must not decode them.
LARGE_MESSAGE = bytes(range(256)) * 256  # 64 KiB, more than one recv() usually returns


# -- running the learner's handler --------------------------------------------------------
class _HandlerRun:
    """Wraps the learner's handler: remembers what it raised and when it returned."""

    def __init__(self, handler) -> None:
        self.handler = handler
        self.error: BaseException | None = None
        self.finished = threading.Event()
        self.aborted = False
        self.conn: socket.socket | None = None

    def __call__(self, conn: socket.socket) -> None:
        self.conn = conn
        try:
            self.handler(conn)
        except BaseException as error:  # handed to the feedback, never to the server
            if not self.aborted:
                self.error = error
        finally:
            self.finished.set()

    def abort(self) -> None:
        """Stop a handler that did not return: its connection is shut down and closed."""
        self.aborted = True
        conn = self.conn
        if conn is not None:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)  # wakes a recv() that is waiting
            conn.close()  # a handler looping on recv() now gets an OSError and ends


def _exchange(client: socket.socket, message: bytes) -> tuple[bytes, str]:
    """Send `message` while reading the echo; (what came back, why reading stopped).

    The reason is 'complete', 'closed' (b'' from recv), 'reset' or 'timeout'. Sending and
    reading are interleaved so that a large echo never fills both buffers and stalls.
    """
    received = bytearray()
    sent = 0
    client.setblocking(False)
    with selectors.DefaultSelector() as selector:
        selector.register(client, selectors.EVENT_READ | selectors.EVENT_WRITE)
        while len(received) < len(message):
            ready = selector.select(ANSWER_TIMEOUT)
            if not ready:
                return bytes(received), "timeout"
            events = ready[0][1]
            try:
                if events & selectors.EVENT_WRITE and sent < len(message):
                    sent += client.send(message[sent : sent + 16384])
                    if sent == len(message):
                        selector.modify(client, selectors.EVENT_READ)
                if events & selectors.EVENT_READ:
                    chunk = client.recv(65536)
                    if not chunk:
                        return bytes(received), "closed"
                    received += chunk
            except BlockingIOError:
                continue
            except (ConnectionResetError, BrokenPipeError):
                return bytes(received), "reset"
    return bytes(received), "complete"


def _preview(data: bytes, limit: int = 24) -> str:
    return repr(data) if len(data) <= limit else f"{data[:limit]!r}... ({len(data)} bytes)"


def _raised(run: _HandlerRun) -> str | None:
    """What the handler raised, once it has finished (waiting briefly for it)."""
    run.finished.wait(ANSWER_TIMEOUT)
    if run.error is None:
        return None
    error = run.error
    hint = ""
    if isinstance(error, UnicodeDecodeError):
        hint = ": an echo server handles bytes; send back what recv() returned without decoding"
    elif isinstance(error, TypeError) and "bytes" in str(error):
        hint = ": send() and sendall() take bytes such as b'hi', not str"
    elif isinstance(error, TimeoutError):
        hint = ": recv() waited for data that never came; send back each piece as it arrives"
    return f"your handler raised {type(error).__name__}: {error}{hint}"


def _why_nothing(run: _HandlerRun, reason: str, message: bytes) -> str:
    raised = _raised(run)
    if raised:
        return raised
    if reason == "timeout":
        return (
            f"nothing came back within {ANSWER_TIMEOUT:g} s after {_preview(message)}: "
            "call conn.sendall(data) with each piece recv() returns, as soon as it arrives"
        )
    return (
        "the connection closed before anything came back: your handler returned without "
        "sending; send back what recv() returned"
    )


def _signature_problem(handler) -> str | None:
    if not callable(handler):
        return (
            f"check() needs your handler function itself, e.g. check(my_echo), "
            f"got {type(handler).__name__}"
        )
    if inspect.iscoroutinefunction(handler) or inspect.isgeneratorfunction(handler):
        return "write the handler as a plain `def` (not async def, no yield): it runs in a thread"
    try:
        inspect.signature(handler).bind(None)
    except TypeError:
        return (
            "the handler must take exactly one argument, the connected socket: def my_echo(conn):"
        )
    except ValueError:
        pass  # a builtin without a signature: just try it
    return None


# -- the check -------------------------------------------------------------------------
def check(handler) -> Feedback:
    """Serve `handler` on loopback and talk to it like a client would; say what to fix."""
    feedback = Feedback("Echo handler")
    problem = _signature_problem(handler)
    if problem:
        feedback.expect(False, "", problem)
        return feedback
    run = _HandlerRun(handler)
    try:
        with LoopbackServer(handler=run) as server:
            client = connect(server.address)
            try:
                _talk(client, run, feedback)
            finally:
                client.close()
                if not run.finished.wait(0.05):
                    run.abort()
    except RuntimeError as error:  # a thread that would not stop
        feedback.expect(
            False,
            "",
            f"your handler could not be stopped ({error}): it must "
            "return when its connection closes",
        )
    return feedback


def _talk(client: socket.socket, run: _HandlerRun, feedback: Feedback) -> None:
    for number, message in enumerate((b"hello", b"world")):
        reply, reason = _exchange(client, message)
        if number == 1 and not reply and reason != "timeout":
            feedback.expect(
                False,
                "",
                _raised(run)
                or (
                    "it answered the first message and then returned: loop until recv() returns "
                    "b'', so one connection can carry many messages"
                ),
            )
            return
        if not reply:
            feedback.expect(False, "", _why_nothing(run, reason, message))
            return
        if not feedback.expect(
            reply == message,
            f"it echoed {message!r} back unchanged",
            f"it sent back {_preview(reply)} instead of {message!r}: send "
            "back exactly the bytes recv() returned",
        ):
            return

    reply, reason = _exchange(client, LARGE_MESSAGE)
    size = f"a {len(LARGE_MESSAGE) // 1024} KiB message"
    if reply != LARGE_MESSAGE:
        feedback.expect(
            False,
            "",
            _raised(run)
            or (
                f"{size} came back as {len(reply)} bytes ({reason}): keep calling recv() and "
                "send back every piece, without decoding it"
            ),
        )
        return
    feedback.expect(True, f"{size} of every byte value came back whole", "")

    client.shutdown(socket.SHUT_WR)  # the client has finished: the handler's recv() gets b''
    returned = run.finished.wait(SHORT_TIMEOUT)
    if returned and run.error is not None:
        feedback.expect(False, "", _raised(run) or "")
        return
    feedback.expect(
        returned,
        "when the client closed, recv() returned b'' and your handler returned",
        f"your handler was still running {SHORT_TIMEOUT:g} s after the client closed: when "
        "recv() returns b'' the client has finished, so stop the loop (if not data: break)",
    )
    if returned:
        client.settimeout(ANSWER_TIMEOUT)
        try:
            last = client.recv(1)
        except OSError:
            last = b""
        feedback.expect(
            last == b"",
            "then the server closed its side: the client read b''",
            f"after the client closed, the handler still sent {last!r}",
        )
