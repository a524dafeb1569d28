"""Resident memory of the process and the model-memory budget (``INFER_MAX_MODEL_MEMORY_MB``).

A version's memory is the growth of the process's resident set (RSS) across its load (session,
self-check and warm-up), never below 0: loads run one at a time, so concurrent traffic is the only
noise. Before a load the guard compares the models' recorded memory plus the new bundle's size on
disk (a lower bound of what its session needs) with the budget; after the load, the measured
growth replaces the estimate and a version that pushed the total over the budget is unloaded and
marked failed (reason ``memory``).
"""

from __future__ import annotations

import os
from pathlib import Path

CGROUP_FILES = (
    Path("/sys/fs/cgroup/memory.max"),  # cgroup v2
    Path("/sys/fs/cgroup/memory/memory.limit_in_bytes"),  # cgroup v1
)
# Share of the container's memory limit that models may hold by default (the rest: Python,
# buffers, requests in flight).
CGROUP_SHARE = 0.8
MB = 1024 * 1024


def rss_bytes() -> int:
    """The process's resident set size now (Linux /proc; 0 where it cannot be read)."""
    try:
        fields = Path("/proc/self/statm").read_text().split()
        return int(fields[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


def cgroup_limit_bytes() -> int | None:
    """The container's memory limit, or None when there is none (or it is unreadable)."""
    for path in CGROUP_FILES:
        try:
            raw = path.read_text().strip()
        except OSError:
            continue
        if raw == "max" or not raw.isdigit():
            return None
        limit = int(raw)
        return None if limit >= 2**60 else limit  # v1 reports "no limit" as a huge number
    return None


def budget_bytes(max_model_memory_mb: int | None) -> int | None:
    """The model-memory budget: the setting, else 80% of the cgroup limit, else none."""
    if max_model_memory_mb is not None:
        return max_model_memory_mb * MB
    limit = cgroup_limit_bytes()
    return int(limit * CGROUP_SHARE) if limit is not None else None


def bundle_bytes(bundle_dir: Path) -> int:
    """Bytes of the files in a bundle directory (the pre-load estimate of its memory)."""
    return sum(p.stat().st_size for p in bundle_dir.rglob("*") if p.is_file())
