"""Test helpers: tiny models, fake sessions, a real uvicorn server on 127.0.0.1."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import numpy as np

from default_models.random_checkpoint import write_random_checkpoint


def build_tiny_checkpoint(root: Path, seed: int = 0) -> Path:
    """A random 2-layer BERT-CRF with the MiniLM WordPiece tokenizer, saved in both forms."""
    return write_random_checkpoint(root, "tiny", seed)


class TableSession:
    """Context-free fake: each token's emissions depend on its id only (via a fixed table)."""

    def __init__(self, table: np.ndarray) -> None:
        self.table = table

    @property
    def input_names(self) -> list[str]:
        return ["input_ids", "attention_mask", "token_type_ids"]

    @property
    def provider(self) -> str:
        return "fake"

    def run(self, inputs: dict[str, np.ndarray]) -> np.ndarray:
        return self.table[inputs["input_ids"]].astype(np.float32)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def running_server(bundles_dir: Path, **env: str) -> Iterator[str]:
    """Start ``python -m service`` on 127.0.0.1, wait for readiness, stop it by PID."""
    port = free_port()
    environ = {
        **os.environ,
        "INFER_BUNDLES_DIR": str(bundles_dir),
        "INFER_PORT": str(port),
        "INFER_LOG_LEVEL": "warning",
        **env,
    }
    process = subprocess.Popen([sys.executable, "-m", "service"], env=environ)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert process.poll() is None, "server exited during start-up"
            try:
                if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        else:
            raise TimeoutError("server did not become ready in 60 s")
        yield base
    finally:
        process.terminate()
        process.wait(timeout=30)
