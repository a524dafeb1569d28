"""Small measurement helpers shared by the driver and the worker processes."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Summary:
    """Latencies of one contender at one setting, and its throughput in items per second."""

    count: int  # timed calls (requests or batches)
    items: int  # utterances or documents they carried
    seconds: float  # wall time of the timed part
    p50_ms: float
    p95_ms: float
    p99_ms: float
    per_s: float  # items per second
    cpu_s: float = 0.0  # CPU time the contender used meanwhile (all its threads)
    per_cpu_s: float = 0.0  # items per CPU-second: less sensitive to other jobs on the box

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def summarize(
    latencies_s: Sequence[float], items: int, seconds: float, cpu_s: float = 0.0
) -> Summary:
    ms = np.asarray(latencies_s, dtype=np.float64) * 1000.0
    p50, p95, p99 = (float(np.percentile(ms, q)) for q in (50, 95, 99))
    return Summary(
        len(ms),
        items,
        seconds,
        p50,
        p95,
        p99,
        items / seconds if seconds else 0.0,
        cpu_s,
        items / cpu_s if cpu_s else 0.0,
    )


def process_cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process so far (all threads), from /proc/PID/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def proc_status_kib(pid: int, field: str) -> int:
    """A ``kB`` field of /proc/PID/status (VmHWM = peak RSS, VmRSS = current RSS)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    raise KeyError(f"{field} not in /proc/{pid}/status")


def load_average() -> tuple[float, float, float]:
    """Other jobs on the box skew every wall-clock figure: the table states this."""
    return os.getloadavg()
