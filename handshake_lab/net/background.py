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
- `close()` joins every thread within one THREAD_JOIN_TIMEOUT deadline and fails loudly,
  naming the threads still alive. Finished threads are dropped from the list as new ones
  start, so a server that runs for hours keeps a short list.
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

    def __init__(self, name: str, *, ignore_errors_after_stop: bool = False) -> None:
        self.name = name
        self.ignore_errors_after_stop = ignore_errors_after_stop
        self.stopping = threading.Event()
        self.errors: list[BaseException] = []
        self._threads: list[threading.Thread] = []
        self._waker: tuple[socket.socket, socket.socket] | None = None
        self._lock = threading.Lock()
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

    def start(self, target: Callable[..., object], *args: object,
              name: str) -> threading.Thread:
        """Run ``target(*args)`` in a new thread; its exception is kept for close()."""
        if self._closed:
            raise RuntimeError(f"{self.name} is closed: make a new one")

        def run() -> None:
            try:
                target(*args)
            except BaseException as error:  # raised again in the caller by close()
                if not (self.ignore_errors_after_stop and self.stopping.is_set()):
                    self.errors.append(error)

        context = contextvars.copy_context()
        thread = threading.Thread(target=context.run, args=(run,),
                                  name=f"handshake-lab-{name}", daemon=True)
        with self._lock:
            if len(self._threads) >= _REAP_AT:
                self._threads = [t for t in self._threads if t.is_alive()]
            self._threads.append(thread)
        thread.start()
        return thread

    def stop(self) -> None:
        """Ask every thread to stop: set `stopping`, make `wake_socket` readable (idempotent)."""
        with self._lock:
            first = not self.stopping.is_set()
            self.stopping.set()
            if first and self._waker is not None:
                with contextlib.suppress(OSError):
                    self._waker[1].send(b"x")

    def join(self, threads: Iterable[threading.Thread] | None = None, *,
             timeout: float = THREAD_JOIN_TIMEOUT) -> list[str]:
        """Join `threads` (all by default) within one deadline; the names of those still alive."""
        with self._lock:
            waiting = list(self._threads if threads is None else threads)
        deadline = time.monotonic() + timeout
        for thread in waiting:
            if thread.ident is not None:  # never started: nothing to join
                thread.join(max(0.0, deadline - time.monotonic()))
        return [thread.name for thread in waiting if thread.is_alive()]

    def close(self, *, raise_errors: bool = True) -> None:
        """stop(), join every thread, close the wake-up pair, then raise what went wrong.

        Idempotent. A thread still alive after the deadline is a RuntimeError naming it (its
        wake-up pair is left open: the thread may still be selecting on it).
        """
        if self._closed:
            return
        self.stop()
        stuck = self.join()
        self._closed = True
        if not stuck and self._waker is not None:
            for end in self._waker:
                end.close()
        if stuck:
            raise RuntimeError(f"{self.name}: threads still running after "
                               f"{THREAD_JOIN_TIMEOUT} s: {stuck}; a thread must return "
                               "when its socket closes or stop() is called")
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
