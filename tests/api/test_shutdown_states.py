"""SIGTERM in every state of a real ``python -m service``: idle, work running inside ONNX Runtime
and queued past the graceful timeout, a client still sending its body. Always exit 0, and every
accepted request gets complete JSON."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from tests.helpers import free_port

pytestmark = pytest.mark.slow

# ~4,500 tokens per text: ~370 windows of the tiny bundle's 16 tokens; 16 such texts keep the
# tiny model busy for several seconds, far past the graceful timeout used here.
TEXT = " ".join(["tushar se 2 misal mangwao aur inayat cafe se pizza"] * 390)[:20_000]


def start(bundles_dir: Path, **env: str) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    environ = {
        **os.environ,
        "INFER_BUNDLES_DIR": str(bundles_dir),
        "INFER_PORT": str(port),
        "INFER_LOG_LEVEL": "warning",
        **env,
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "service"], env=environ, stderr=subprocess.PIPE
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert process.poll() is None, "server exited during start-up"
        try:
            if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                return process, base
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    process.kill()
    raise TimeoutError("server did not become ready in 60 s")


def stop(process: subprocess.Popen[bytes], timeout: float) -> tuple[int, str]:
    process.send_signal(signal.SIGTERM)
    try:
        _, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        _, stderr = process.communicate()
        raise AssertionError(f"no exit within {timeout} s after SIGTERM") from None
    return process.returncode, stderr.decode(errors="replace")


def test_idle_sigterm_exits_0(tiny_bundle: Path) -> None:
    process, _ = start(tiny_bundle.parent)
    code, stderr = stop(process, 15)
    assert code == 0, stderr


def test_running_and_queued_work_past_the_graceful_timeout_get_503_json_and_exit_0(
    tiny_bundle: Path,
) -> None:
    process, base = start(
        tiny_bundle.parent,
        INFER_GRACEFUL_TIMEOUT_SECONDS="2",
        INFER_MAX_REQUEST_TOKENS="1000000",
        INFER_MAX_BODY_BYTES="4000000",
        # big slices, so that SIGTERM lands inside a long ONNX Runtime call
        INFER_MAX_BATCH_SIZE="1024",
        INFER_MAX_BATCH_TOKENS="1000000",
        # this test is about shutdown: both requests must be admitted (queued work, no shedding)
        INFER_MAX_QUEUE_TOKENS="10000000",
        INFER_SHED_LATE_REQUESTS="false",
    )
    answers: list[httpx.Response] = []

    def call() -> None:
        # 64 x 20,000 characters: long enough to outlast SIGTERM + the 2 s graceful timeout on a
        # fast AVX-512 host too (16 texts finished in time there, so nothing was cut)
        body = {"texts": [TEXT] * 64}
        answers.append(httpx.post(f"{base}/v1/entities", json=body, timeout=60))

    threads = [threading.Thread(target=call) for _ in range(2)]  # one running, one queued
    for thread in threads:
        thread.start()
    time.sleep(2.0)
    sigterm_at = time.monotonic()
    code, stderr = stop(process, 20)
    for thread in threads:
        thread.join(10)
    assert code == 0, stderr  # was -6 (SIGABRT from the worker thread inside ONNX Runtime)
    assert "terminate called" not in stderr
    assert time.monotonic() - sigterm_at < 10
    assert len(answers) == 2
    kinds = []
    for response in answers:  # complete JSON: the result if it finished in time, else 503
        body = response.json()
        if response.status_code == 200:
            assert len(body["results"]) == 64
            kinds.append("ok")
        else:
            assert response.status_code == 503, response.text
            kinds.append(body["error"]["type"])
    assert set(kinds) <= {"ok", "draining"} and "draining" in kinds


def test_a_client_still_sending_its_body_gets_json_and_the_process_exits_0(
    tiny_bundle: Path,
) -> None:
    process, base = start(tiny_bundle.parent, INFER_GRACEFUL_TIMEOUT_SECONDS="1")
    host, port = base.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=15)
    head = b"POST /v1/entities HTTP/1.1\r\nHost: x\r\ncontent-type: application/json\r\n"
    sock.sendall(head + b"content-length: 100\r\n\r\n{")
    time.sleep(0.5)
    code, stderr = stop(process, 15)
    response = b""
    while chunk := sock.recv(65536):
        response += chunk
    assert code == 0, stderr
    status_line, _, rest = response.partition(b"\r\n")
    assert status_line.split()[1] in (b"503", b"408"), response
    body = json.loads(rest.partition(b"\r\n\r\n")[2])
    assert body["error"]["type"] in ("draining", "request_timeout")
