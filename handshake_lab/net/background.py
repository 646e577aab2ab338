"""One way to run work in background threads: start, wake, stop, join, hand back errors.

Every server, worker and sniffer in the lab runs its threads through a `Background`, the
way socketserver has one BaseServer: written once, tested once. Rules:

- Threads are daemon threads named ``handshake-lab-NAME``, started in a copy of the
  caller's context, so a trace hook set by ``with Recorder():`` (see `trace`) follows the
  calls they make.
- An exception raised in a thread is kept and raised again in the caller by `close()`
  (a RuntimeError from the first one). Errors raised after `stop()` was asked are dropped
  when ``ignore_errors_after_stop`` (closing sockets under a thread makes it fail).
- `stop()` sets `stopping` and makes `wake_socket` readable, so a thread that waits in a
  selector wakes at once: a thread with nothing to do sleeps, it never polls.
- `close()` joins every thread within one deadline (``join_timeout``, THREAD_JOIN_TIMEOUT
  by default) and fails loudly, naming the threads still alive. A caller that joins some
  threads first (a server stops its accept thread before it closes the listener) passes
  the deadline it started with to `close()`, so the whole shutdown still waits at most one
  ``join_timeout``. Finished threads are dropped from the list as new ones start, so a
  server that runs for hours keeps a short list.
"""

from __future__ import annotations

import contextlib
import contextvars
import socket
import threading
import time
from collections.abc import Callable, Iterable

from ..timeouts import THREAD_JOIN_TIMEOUT

#: Threads kept in the list before the finished ones are dropped.
_REAP_AT = 64


class Background:
    """The threads of one server, worker pool or sniffer; see the module docstring."""

    def __init__(
        self,
        name: str,
        *,
        ignore_errors_after_stop: bool = False,
        join_timeout: float = THREAD_JOIN_TIMEOUT,
    ) -> None:
        self.name = name
        self.ignore_errors_after_stop = ignore_errors_after_stop
        self.join_timeout = join_timeout
        self.stopping = threading.Event()
        self.errors: list[BaseException] = []
        self._threads: list[threading.Thread] = []
        self._waker: tuple[socket.socket, socket.socket] | None = None
        self._lock = threading.Lock()
        self._running = 0  # threads started whose target has not yet returned
        self._closed = False

    @property
    def wake_socket(self) -> socket.socket:
        """A socket that becomes readable when stop() is called: select on it beside yours."""
        with self._lock:
            if self._waker is None:
                if self._closed:
                    raise RuntimeError(f"{self.name} is closed: make a new one")
                self._waker = socket.socketpair()
                if self.stopping.is_set():
                    self._waker[1].send(b"x")
            return self._waker[0]

    def start(self, target: Callable[..., object], *args: object, name: str) -> threading.Thread:
        """Run ``target(*args)`` in a new thread; its exception is kept for close()."""
        if self._closed:
            raise RuntimeError(f"{self.name} is closed: make a new one")

        def run() -> None:
            try:
                target(*args)
            except BaseException as error:  # raised again in the caller by close()
                if not (self.ignore_errors_after_stop and self.stopping.is_set()):
                    self.errors.append(error)
            finally:
                self._finished()

        context = contextvars.copy_context()
        thread = threading.Thread(
            target=context.run, args=(run,), name=f"handshake-lab-{name}", daemon=True
        )
        with self._lock:
            if len(self._threads) >= _REAP_AT:
                self._threads = [t for t in self._threads if t.is_alive()]
            self._threads.append(thread)
            self._running += 1
        try:
            thread.start()
        except BaseException:
            self._finished()
            raise
        return thread

    def _finished(self) -> None:
        """A thread's target has returned: the last one after a stuck close() closes the pair."""
        with self._lock:
            self._running -= 1
            if self._closed and self._running == 0:
                self._close_waker()

    def _close_waker(self) -> None:
        if self._waker is not None:
            for end in self._waker:
                end.close()

    def stop(self) -> None:
        """Ask every thread to stop: set `stopping`, make `wake_socket` readable (idempotent)."""
        with self._lock:
            first = not self.stopping.is_set()
            self.stopping.set()
            if first and self._waker is not None:
                with contextlib.suppress(OSError):
                    self._waker[1].send(b"x")

    def join(
        self, threads: Iterable[threading.Thread] | None = None, *, timeout: float | None = None
    ) -> list[str]:
        """Join `threads` (all by default) within `timeout` (``join_timeout`` by default);
        the names of those still alive."""
        with self._lock:
            waiting = list(self._threads if threads is None else threads)
        deadline = time.monotonic() + (self.join_timeout if timeout is None else timeout)
        for thread in waiting:
            if thread.ident is not None:  # never started: nothing to join
                thread.join(max(0.0, deadline - time.monotonic()))
        return [thread.name for thread in waiting if thread.is_alive()]

    def close(self, *, raise_errors: bool = True, deadline: float | None = None) -> None:
        """stop(), join every thread, close the wake-up pair, then raise what went wrong.

        Idempotent. `deadline` is a time.monotonic() value, ``join_timeout`` from now by
        default. A thread still alive after it is a RuntimeError naming it (its wake-up pair
        is left open, as the thread may still be selecting on it: the last thread to finish
        closes it).
        """
        if self._closed:
            return
        self.stop()
        stuck = self.join(
            timeout=None if deadline is None else max(0.0, deadline - time.monotonic())
        )
        with self._lock:
            self._closed = True
            if self._running == 0:
                self._close_waker()
        if stuck:
            raise RuntimeError(
                f"{self.name}: threads still running after "
                f"{self.join_timeout} s: {stuck}; a thread must return "
                "when its socket closes or stop() is called"
            )
        if raise_errors:
            self.raise_errors()

    def raise_errors(self) -> None:
        """Raise a RuntimeError from the first error a thread raised, if any."""
        if self.errors:
            raise RuntimeError(f"a {self.name} thread failed") from self.errors[0]

    def __enter__(self) -> Background:
        return self

    def __exit__(self, kind, error, traceback) -> None:
        self.close(raise_errors=error is None)
