"""Test helpers: tiny models, fake sessions, a real uvicorn server on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from default_models.random_checkpoint import write_random_checkpoint
from loadtest.server import free_port as free_port  # re-exported: tests take ports from here
from loadtest.server import running_service


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


@contextmanager
def running_server(bundles_dir: Path, **env: str) -> Iterator[str]:
    """``python -m service`` on 127.0.0.1 (loadtest.server's launcher), ready within 60 s, its
    output on the test's own; yields its base URL and stops it by PID."""
    with running_service(bundles_dir, None, env, ready_timeout=60, stop_timeout=30) as service:
        yield service.base
