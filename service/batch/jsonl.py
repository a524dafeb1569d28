"""Append-only JSON-lines files that survive a kill -9: torn-line repair, lock, durable appends.

A line is written with one ``write`` of the whole encoded line (retried until complete) on a file
opened with ``O_APPEND``; a crash can therefore only leave a torn *last* line, which
:meth:`AppendLog.open` cuts off before anything is appended. An exclusive ``flock`` keeps a second
process (a retried pod whose predecessor still runs) from writing the same file.
"""

from __future__ import annotations

import fcntl
import json
import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any


def dumps(obj: Any) -> str:
    """JSON as the HTTP API renders it (Starlette's JSONResponse): compact, UTF-8, no NaN."""
    return json.dumps(obj, ensure_ascii=False, allow_nan=False, separators=(",", ":"))


def unwritable(obj: Any) -> str | None:
    """Why ``obj`` cannot be written as one UTF-8 JSON line (a lone surrogate, NaN, infinity:
    values Python's JSON reader accepts), or None when it can."""
    try:
        dumps(obj).encode("utf-8")
    except UnicodeEncodeError as exc:
        return f"holds text that is not valid Unicode ({exc.reason}); output must be UTF-8"
    except ValueError as exc:
        return f"holds a value JSON output cannot carry ({exc})"
    return None


def printable(value: Any) -> Any:
    """``value`` if it can be written, else its ASCII JSON spelling (for an error record)."""
    return value if unwritable(value) is None else json.dumps(value, ensure_ascii=True)


class LockedError(RuntimeError):
    pass


class AppendLog:
    """One output file: repaired and locked on open; ``append`` writes one record per line."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.repaired_bytes = 0
        self._fd = -1

    def open(self) -> AppendLog:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o644)
        if not stat.S_ISREG(os.fstat(fd).st_mode):  # /dev/full, a FIFO: nothing to resume from
            os.close(fd)
            raise ValueError(
                f"{self.path} is not a regular file; the output and error files must be files "
                "that can be appended to and read back (to resume)"
            )
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise LockedError(f"{self.path} is being written by another process") from None
        self._fd = fd
        self.repaired_bytes = _cut_torn_tail(fd)
        return self

    def records(self) -> Iterator[dict[str, Any]]:
        """Every complete record already in the file (call after ``open``)."""
        with self.path.open("rb") as f:
            for number, line in enumerate(f, start=1):
                try:
                    record = json.loads(line)
                except ValueError as exc:
                    raise ValueError(f"{self.path}:{number} is not JSON: {exc}") from exc
                if not isinstance(record, dict):
                    raise ValueError(f"{self.path}:{number} is not a JSON object")
                yield record

    def append(self, record: dict[str, Any]) -> None:
        """Write one line; it is in the kernel (survives kill -9) when this returns."""
        data = (dumps(record) + "\n").encode("utf-8")
        view = memoryview(data)
        try:
            while view:
                view = view[os.write(self._fd, view) :]
        except OSError as exc:  # a full disk: say which file, exit with the error (exit 2)
            raise OSError(exc.errno, f"cannot write {self.path}: {exc.strerror}") from exc

    def sync(self) -> None:
        """Make what is written durable (survives a node crash): once per batch."""
        os.fsync(self._fd)

    def close(self) -> None:
        if self._fd >= 0:
            os.fsync(self._fd)
            os.close(self._fd)  # releases the lock
            self._fd = -1


def _cut_torn_tail(fd: int) -> int:
    """Truncate after the last newline; return how many bytes of a torn line were removed."""
    size = os.fstat(fd).st_size
    end = size
    while end > 0:
        start = max(0, end - 65536)
        chunk = os.pread(fd, end - start, start)
        newline = chunk.rfind(b"\n")
        if newline >= 0:
            end = start + newline + 1
            break
        end = start
    if end < size:
        os.ftruncate(fd, end)
    return size - end
