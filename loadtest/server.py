"""The one launch-and-wait-for-ready helper: a process on 127.0.0.1, ready when a URL answers 200,
stopped by PID (SIGTERM, then SIGKILL). ``python -m service`` for the load test, the fuzzer, the
fault suite, the benchmarks and the tests is :func:`running_service` on top of it; the monitoring
proof starts Prometheus with :func:`launched` directly."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_BUNDLES = ROOT / ".cache" / "bundles"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_ready(
    process: subprocess.Popen[bytes], url: str, timeout: float, what: str, log: Path | None
) -> None:
    see = f"; see {log}" if log is not None else ""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"{what} exited during start-up (status {process.returncode}){see}")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise SystemExit(f"{what} was not ready within {timeout:.0f} s{see}")


def stop(process: subprocess.Popen[bytes], timeout: float) -> None:
    """SIGTERM by PID, SIGKILL if it has not exited after ``timeout`` s; reaps the process."""
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@contextmanager
def launched(
    command: Sequence[str],
    ready_url: str,
    what: str,
    log: Path | None = None,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    ready_timeout: float = 60.0,
    stop_timeout: float = 30.0,
) -> Iterator[subprocess.Popen[bytes]]:
    """Start ``command`` (stdout and stderr to ``log``, or inherited), wait until GET ``ready_url``
    answers 200, yield the process, stop it afterwards (:func:`stop`). An exit during start-up or
    no readiness within ``ready_timeout`` s is a ``SystemExit`` naming ``what`` and the log."""
    if log is not None:
        log.parent.mkdir(parents=True, exist_ok=True)
        with log.open("wb") as sink:
            process = subprocess.Popen(
                list(command), env=env, cwd=cwd, stdout=sink, stderr=subprocess.STDOUT
            )
    else:
        process = subprocess.Popen(list(command), env=env, cwd=cwd)
    try:
        _wait_ready(process, ready_url, ready_timeout, what, log)
        yield process
    finally:
        stop(process, stop_timeout)


@dataclass
class Service:
    base: str
    process: subprocess.Popen[bytes]
    headers: Mapping[str, str] = field(default_factory=dict)  # sent with /v1/models

    @cached_property
    def models(self) -> dict[str, str]:
        """name -> task, from ``/v1/models`` (asked once)."""
        response = httpx.get(f"{self.base}/v1/models", headers=dict(self.headers), timeout=10)
        return {m["name"]: m["task"] for m in response.json()["models"]}

    @property
    def pid(self) -> int:
        return self.process.pid

    def healthy(self) -> bool:
        try:
            return httpx.get(f"{self.base}/healthz", timeout=10).status_code == 200
        except httpx.TransportError:
            return False


@contextmanager
def running_service(
    bundles: Path,
    log: Path | None = None,
    env: Mapping[str, str] | None = None,
    ready_timeout: float = 300.0,
    root: Path = ROOT,
    headers: Mapping[str, str] | None = None,
    stop_timeout: float = 90.0,
) -> Iterator[Service]:
    """``python -m service`` on 127.0.0.1 with ``INFER_*`` overrides, yielded once /readyz answers.

    ``root`` is the checkout whose ``service`` package runs (another one gives before/after
    figures); ``headers`` go with the ``/v1/models`` request behind ``Service.models`` (an API
    key); ``log`` None leaves the output on this process' own. ``Service.process.returncode``
    holds the exit status once the block has ended.
    """
    port = free_port()
    environ = {
        **os.environ,
        "INFER_BUNDLES_DIR": str(bundles),
        "INFER_HOST": "127.0.0.1",
        "INFER_PORT": str(port),
        "INFER_LOG_LEVEL": "warning",
        **(env or {}),
    }
    base = f"http://127.0.0.1:{port}"
    command = [sys.executable, "-m", "service"]
    with launched(
        command, f"{base}/readyz", "the service", log, environ, root, ready_timeout, stop_timeout
    ) as process:
        yield Service(base, process, dict(headers or {}))
