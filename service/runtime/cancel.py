"""Stopping ONNX Runtime calls nobody waits for any more.

The batcher opens a :class:`CallScope` around each pipeline call it makes on its worker thread;
every ONNX Runtime call made inside registers its ``RunOptions`` there. When every request of the
batch has been given up (deadline, client gone, shutdown), ``terminate()`` sets
``RunOptions.terminate`` on the running call, which ONNX Runtime checks between graph nodes, so
the model is free again within one node instead of one whole call.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


class Cancelled(Exception):
    """An ONNX Runtime call stopped (or never started) because its scope was terminated."""


class CallScope:
    """The ONNX Runtime calls of one batch; thread-safe, terminated at most once."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._running: list[Any] = []
        self.terminated = False

    def attach(self, options: Any) -> None:
        """Register a call's ``RunOptions``; a call in a terminated scope must not start."""
        with self._lock:
            if self.terminated:
                raise Cancelled("the batch was cancelled before this call started")
            self._running.append(options)

    def detach(self, options: Any) -> None:
        with self._lock:
            if options in self._running:
                self._running.remove(options)

    def terminate(self) -> bool:
        """Stop the running call (if any) and every later one; True when a call was running."""
        with self._lock:
            self.terminated = True
            for options in self._running:
                options.terminate = True
            return bool(self._running)


_local = threading.local()


@contextmanager
def active(scope: CallScope) -> Iterator[CallScope]:
    """Make ``scope`` the one sessions on this thread register their calls with."""
    previous = getattr(_local, "scope", None)
    _local.scope = scope
    try:
        yield scope
    finally:
        _local.scope = previous


def current() -> CallScope | None:
    scope: CallScope | None = getattr(_local, "scope", None)
    return scope
