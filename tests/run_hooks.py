"""Intercept a loaded model's ONNX batches by injection, not by patching a live runtime.

``RunHooks.families()`` is the registered serving families with every runtime factory wrapped:
the runtime it builds runs its batches through the hook set for its model name, if any, when the
registry is given these families (``ModelRegistry(settings, hooks.families())``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

from service.families import SERVING_FAMILIES
from service.manifest import ManifestBase
from service.runtime.family import Runtime, RuntimeFactory, ServingFamily
from service.runtime.session import InferenceSession
from service.settings import Settings

# (the runtime's own run_prepared, the batch) -> the batch's results
Hook = Callable[[Callable[[list[Any]], list[Any]], list[Any]], list[Any]]


class RunHooks:
    def __init__(self) -> None:
        self.hooks: dict[str, Hook] = {}

    def set(self, model: str, hook: Hook | None) -> None:
        if hook is None:
            self.hooks.pop(model, None)
        else:
            self.hooks[model] = hook

    def families(self) -> tuple[ServingFamily, ...]:
        return tuple(
            dataclasses.replace(f, runtimes={h: self._wrap(m) for h, m in f.runtimes.items()})
            for f in SERVING_FAMILIES
        )

    def _wrap(self, factory: RuntimeFactory) -> RuntimeFactory:
        def make(
            manifest: ManifestBase, bundle_dir: Path, session: InferenceSession, settings: Settings
        ) -> Runtime[Any, Any]:
            runtime = factory(manifest, bundle_dir, session, settings)
            own = runtime.run_prepared

            def run(items: list[Any]) -> list[Any]:
                hook = self.hooks.get(manifest.name)
                return own(items) if hook is None else hook(own, items)

            runtime.run_prepared = run  # type: ignore[method-assign]
            return runtime

        return make
