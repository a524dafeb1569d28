"""A real ``python -m service`` on 127.0.0.1 for the load test and the fuzzer, stopped by PID."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_BUNDLES = ROOT / ".cache" / "bundles"


@dataclass
class Service:
    base: str
    models: dict[str, str]  # name -> task
    process: subprocess.Popen[bytes]

    def healthy(self) -> bool:
        try:
            return httpx.get(f"{self.base}/healthz", timeout=10).status_code == 200
        except httpx.TransportError:
            return False


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_ready(
    process: subprocess.Popen[bytes], base: str, timeout: float, headers: Mapping[str, str]
) -> dict[str, str]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"the service exited during start-up (status {process.returncode})")
        try:
            if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                response = httpx.get(f"{base}/v1/models", headers=headers, timeout=10)
                models = response.json()["models"]
                return {m["name"]: m["task"] for m in models}
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    raise SystemExit(f"the service was not ready within {timeout:.0f} s")


@contextmanager
def running_service(
    bundles: Path,
    log: Path,
    env: Mapping[str, str] | None = None,
    ready_timeout: float = 300.0,
    root: Path = ROOT,
    headers: Mapping[str, str] | None = None,
) -> Iterator[Service]:
    """Start the service with ``INFER_*`` overrides, wait for /readyz, SIGTERM it afterwards.

    ``root`` is the checkout whose ``service`` package runs (another one gives before/after
    figures); ``headers`` go with the start-up requests (an API key). ``Service.process.returncode``
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
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "service"], env=environ, cwd=root, stdout=sink, stderr=sink
        )
    base = f"http://127.0.0.1:{port}"
    try:
        yield Service(base, _wait_ready(process, base, ready_timeout, headers or {}), process)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=90)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
