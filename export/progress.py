"""Progress lines for slow export and build steps, on stderr so stdout stays machine-readable."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TextIO


class Progress:
    def __init__(self, total_steps: int, stream: TextIO | None = None) -> None:
        self.total = total_steps
        self.current = 0
        self.stream = stream or sys.stderr
        self.started = time.perf_counter()

    def note(self, message: str) -> None:
        print(f"        {message}", file=self.stream, flush=True)

    @contextmanager
    def step(self, title: str) -> Iterator[None]:
        self.current += 1
        print(f"[{self.current}/{self.total}] {title} ...", file=self.stream, flush=True)
        begun = time.perf_counter()
        yield
        self.note(f"done in {time.perf_counter() - begun:.1f} s")

    @property
    def elapsed(self) -> float:
        return time.perf_counter() - self.started


class Heartbeat:
    """A background line every ``interval`` seconds naming the current phase, so that a long
    build never goes silent (a user watching ``make run`` sees it is alive, and where it is).

    ``with Heartbeat() as beat: beat.phase("training")``; a phase change prints at once.
    """

    def __init__(
        self, interval: float = 20.0, stream: TextIO | None = None, prefix: str = "        "
    ) -> None:
        if interval <= 0:
            raise ValueError(f"interval must be positive, got {interval}")
        self.interval = interval
        self.stream = stream or sys.stderr
        self.prefix = prefix
        self._phase = "starting"
        self._phase_began = time.perf_counter()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def phase(self, name: str) -> None:
        self._phase, self._phase_began = name, time.perf_counter()
        self._line(f"{name} ...")

    def note(self, message: str) -> None:
        """A line of the phase's own (it does not reset the phase's clock)."""
        self._line(message)

    def _line(self, text: str) -> None:
        print(f"{self.prefix}{text}", file=self.stream, flush=True)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self._line(f"... still {self._phase} ({time.perf_counter() - self._phase_began:.0f} s)")

    def __enter__(self) -> Heartbeat:
        self._thread = threading.Thread(target=self._run, name="heartbeat", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
