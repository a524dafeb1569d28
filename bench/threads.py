"""Where a server process's CPU goes, thread by thread: /proc/PID/task/*/stat, named by py-spy.

The service's c=32 ceiling is its CPU per request (``bench.report``); this splits that CPU into
the threads that spend it: the model's worker (``batcher-<model>``: ONNX Runtime's calling thread),
ONNX Runtime's own pool threads (native, unnamed), the event loop (``MainThread``: HTTP, JSON,
validation, tokenizing small requests) and the finisher (``finish-<model>``: decoding while the
next batch runs). Python threads have no OS names before 3.14, so ``py-spy dump`` (a dev
dependency) names them; without it (or without ptrace rights) every thread is "unnamed".
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

NATIVE = "native (ONNX Runtime pool)"
_THREAD = re.compile(r'Thread (0x[0-9a-fA-F]+|\d+) \(\w+\): "([^"]+)"')


def thread_cpu_s(pid: int) -> dict[int, float]:
    """User + system CPU seconds of each thread of ``pid`` so far."""
    tick = os.sysconf("SC_CLK_TCK")
    out: dict[int, float] = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:  # the thread ended meanwhile
            continue
        out[int(task.name)] = (int(fields[11]) + int(fields[12])) / tick
    return out


def thread_names(pid: int) -> dict[int, str]:
    """Native thread id -> Python thread name (py-spy dump); {} when py-spy cannot attach."""
    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    try:
        dump = subprocess.run(
            [spy, "dump", "--pid", str(pid)], capture_output=True, text=True, timeout=30
        ).stdout
    except (OSError, subprocess.TimeoutExpired):
        return {}
    return {int(tid, 0): name for tid, name in _THREAD.findall(dump)}


def per_request_ms(
    before: dict[int, float], after: dict[int, float], names: dict[int, str], requests: int
) -> dict[str, float]:
    """CPU-ms per request by thread name (model suffixes dropped; unnamed threads together),
    threads that used under 0.5% of the total left out."""
    used: dict[str, float] = {}
    total = sum(after[t] - before.get(t, 0.0) for t in after)
    for tid, seconds in after.items():
        spent = seconds - before.get(tid, 0.0)
        if total <= 0 or spent / total < 0.005:
            continue
        name = names.get(tid, NATIVE if names else "unnamed")
        name = re.sub(r"^(batcher|finish|tokenize)-.*", r"\1", name)
        used[name] = used.get(name, 0.0) + 1000 * spent / requests
    return dict(sorted(used.items(), key=lambda kv: -kv[1]))
