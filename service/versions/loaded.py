"""One loaded model version: its bundle, runtime, worker, lifecycle state and memory."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from service.manifest import BundleManifest
from service.runtime.batcher import Batcher
from service.runtime.family import Runtime
from service.selfcheck import SelfCheckReport
from service.versions.state import State


@dataclass(eq=False)
class LoadedModel:
    bundle_dir: Path
    manifest: BundleManifest
    runtime: Runtime[Any, Any] | None = None
    # One worker per model version runs one batch at a time (concurrent runs on few cores only
    # thrash each other) and merges queued requests into it.
    batcher: Batcher[Any, Any] | None = None
    selfcheck: SelfCheckReport | None = None
    state: State = "loading"
    reason: str | None = None  # why it failed (state "failed")
    memory_bytes: int = 0  # RSS growth across its load (service.versions.memory)
    inflight: int = 0  # requests admitted to it and not answered yet

    @property
    def name(self) -> str:
        return self.manifest.name

    @property
    def version(self) -> str:
        return self.manifest.version

    @property
    def ref(self) -> str:
        """``name@version``: the reference that pins this version in a request."""
        return f"{self.name}@{self.version}"
