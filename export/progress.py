"""Progress lines for the slow export steps, on stderr so stdout stays machine-readable."""

from __future__ import annotations

import sys
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
