"""SIGTERM under load on a real ``python -m service`` process: drain, lose nothing, exit 0."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from tests.helpers import free_port

pytestmark = pytest.mark.slow

# ~1,100 tokens: about 90 windows of the tiny bundle's 16 tokens; 8 of them take ~0.7 s here.
TEXT = " ".join(["tushar se 2 misal mangwao aur inayat cafe se pizza"] * 100)
REQUESTS = 12
DRAIN_S = 1.5


def start(bundles_dir: Path, port: int) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "INFER_BUNDLES_DIR": str(bundles_dir),
        "INFER_PORT": str(port),
        "INFER_LOG_LEVEL": "warning",
        "INFER_DRAIN_SECONDS": str(DRAIN_S),
        "INFER_GRACEFUL_TIMEOUT_SECONDS": "60",
        # about shutdown, not admission: every request is admitted (no shedding by deadline or
        # queued work; docs/reliability.md)
        "INFER_SHED_LATE_REQUESTS": "false",
        "INFER_MAX_QUEUE_TOKENS": "10000000",
        "INFER_MAX_TOKENIZING": "64",
    }
    process = subprocess.Popen([sys.executable, "-m", "service"], env=env)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert process.poll() is None, "server exited during start-up"
        try:
            if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                return process
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    process.kill()
    raise TimeoutError("server did not become ready in 60 s")


def in_flight(base: str) -> float:
    for line in httpx.get(f"{base}/metrics", timeout=5).text.splitlines():
        if line.startswith("infer_requests_in_flight "):
            return float(line.split()[1]) - 1  # this scrape is in flight too
    raise AssertionError("no infer_requests_in_flight metric")


def test_sigterm_finishes_accepted_requests_refuses_new_ones_and_exits_0(
    tiny_bundle: Path,
) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    process = start(tiny_bundle.parent, port)
    results: list[tuple[float, int, dict[str, object]]] = []

    def call(texts: list[str]) -> None:
        response = httpx.post(f"{base}/v1/entities", json={"texts": texts}, timeout=120)
        body = {**response.json(), "connection": response.headers.get("connection")}
        results.append((time.monotonic(), response.status_code, body))

    try:
        threads = [threading.Thread(target=call, args=([TEXT] * 8,)) for _ in range(REQUESTS)]
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + 30
        while in_flight(base) < REQUESTS // 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert in_flight(base) >= REQUESTS // 2
        sigterm_at = time.monotonic()
        process.send_signal(signal.SIGTERM)

        # Draining: readiness is 503 at once; a late request is still accepted (it queues).
        ready = httpx.get(f"{base}/readyz", timeout=5)
        assert ready.status_code == 503 and ready.json()["error"]["type"] == "draining"
        threads.append(threading.Thread(target=call, args=(["ek misal"],)))
        threads[-1].start()
        time.sleep(0.3)
        assert time.monotonic() - sigterm_at < DRAIN_S, "the drain window was too short to test"

        # After the drain the listener is closed while accepted requests are still running.
        time.sleep(max(0.0, sigterm_at + DRAIN_S + 0.5 - time.monotonic()))
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"{base}/healthz", timeout=5)
        assert len(results) < REQUESTS, "every request ended before the listener closed"

        assert process.wait(timeout=60) == 0
        for thread in threads:
            thread.join(timeout=5)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()

    assert len(results) == REQUESTS + 1
    assert all(status == 200 for _, status, _ in results)
    for _, _, body in results:
        documents = body["results"]
        assert isinstance(documents, list) and len(documents) in (1, 8)
    late = [body for _, _, body in results if len(body["results"]) == 1]  # type: ignore[arg-type]
    assert len(late) == 1 and late[0]["connection"] == "close"
    assert max(done for done, _, _ in results) > sigterm_at + DRAIN_S
