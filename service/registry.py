"""Loaded models: discovers bundles, verifies them at start-up, loads and warms them up.

Verification (manifest schema, files present, ONNX sha256) runs before the server accepts traffic,
so a broken bundle stops start-up with a clear message. Creating sessions, the self-check (the
bundle's stored sample must give the same outputs on this CPU) and the warm-up run happen in the
background; ``/readyz`` turns 200 only when they are done, and names the reason if one failed.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from service.bundle import MANIFEST_FILE, BundleError
from service.errors import InvalidInput, ModelNotFound, NotReady
from service.families import SERVING_FAMILIES, family_table, route_table
from service.manifest import BundleManifest
from service.metrics import MODEL_INFO, MODEL_LOAD_FAILURES, QUEUE_CAPACITY, READY
from service.runtime.batcher import Batcher, BatchLimits
from service.runtime.family import RequestOptions, Runtime, ServingFamily
from service.runtime.loader import Families, build_runtime
from service.selfcheck import SelfCheckError, SelfCheckReport
from service.settings import Settings

log = logging.getLogger("service.registry")


@dataclass
class LoadedModel:
    bundle_dir: Path
    manifest: BundleManifest
    runtime: Runtime[Any, Any] | None = None
    # One worker per model runs one batch at a time (concurrent runs on few cores only thrash
    # each other) and merges queued requests into it.
    batcher: Batcher[Any, Any] | None = None
    selfcheck: SelfCheckReport | None = None

    @property
    def name(self) -> str:
        return self.manifest.name


class ModelRegistry:
    """``families``: the serving families it knows (default: the registered ones,
    ``service.families``); a test passes its own to serve a family from outside the tree."""

    def __init__(
        self, settings: Settings, families: tuple[ServingFamily, ...] = SERVING_FAMILIES
    ) -> None:
        self.settings = settings
        self.families = Families(families)
        self.by_task = family_table(families)
        # What each model route serves: the bundle tasks it accepts (a posture bundle is a
        # multi-label classifier, so /v1/classify serves it too).
        self.route_tasks = route_table(families)
        self.models: dict[str, LoadedModel] = {}
        self.ready = False
        self.load_error: str | None = None
        # Set on SIGTERM (service.__main__): /readyz answers 503 while queued work still runs.
        self.draining = False

    def discover(self) -> None:
        """Verify every selected bundle; raise BundleError naming the first broken one."""
        root = self.settings.bundles_dir
        found = sorted(p.parent for p in root.glob(f"*/{MANIFEST_FILE}"))
        for bundle_dir in found:
            manifest = self.families.verify(bundle_dir)
            if self.settings.models and manifest.name not in self.settings.models:
                continue
            if manifest.name in self.models:
                raise BundleError(f"two bundles are named {manifest.name!r} in {root}")
            self.models[manifest.name] = LoadedModel(bundle_dir, manifest)
        missing = set(self.settings.models) - set(self.models)
        if missing:
            raise BundleError(f"bundles {sorted(missing)} not found in {root}")
        if not self.models:
            raise BundleError(f"no bundles (sub-directories with {MANIFEST_FILE}) in {root}")

    def load(self) -> None:
        """Create ONNX Runtime sessions and run one warm-up inference per model (blocking)."""
        try:
            for model in self.models.values():
                model.runtime = self._build_runtime(model)
                model.batcher = Batcher(
                    model.name,
                    model.runtime.run_prepared,
                    self._limits(),
                    model.runtime.run_slice,
                    model.runtime.merge,
                )
                manifest = model.manifest
                provider = model.runtime.session.provider
                MODEL_INFO.labels(
                    model.name,
                    manifest.version,
                    manifest.task,
                    manifest.model_digest()[:12],
                    provider,
                    manifest.quantization(),
                ).set(1)
                QUEUE_CAPACITY.labels(model.name).set(self.settings.max_queue)
                log.info("loaded %s %s (%s)", model.name, manifest.version, provider)
        except SelfCheckError as exc:
            self.load_error = str(exc)
            MODEL_LOAD_FAILURES.inc()
            log.error("not serving: %s", exc)
            return
        except Exception as exc:
            self.load_error = f"{type(exc).__name__}: {exc}"
            MODEL_LOAD_FAILURES.inc()
            log.exception("loading models failed")
            return
        self.ready = True
        READY.set(1)

    def close(self) -> None:
        """Stop every model's worker after it has answered what is queued; joined, so that no
        thread is inside ONNX Runtime when the interpreter exits (that aborts the process)."""
        for model in self.models.values():
            if model.batcher is not None:
                model.batcher.close()

    def _limits(self) -> BatchLimits:
        s = self.settings
        return BatchLimits(
            s.max_batch_size,
            s.max_batch_tokens,
            s.max_queue,
            s.batch_wait_ms / 1000,
            s.request_timeout_s,
            s.slice_tokens,
        )

    def _build_runtime(self, model: LoadedModel) -> Runtime[Any, Any]:
        loaded = build_runtime(
            model.manifest, model.bundle_dir, self.settings, self.families, metered_as=model.name
        )
        model.selfcheck = loaded.selfcheck
        runtime = loaded.runtime
        runtime.run_prepared([runtime.prepare(["warm up the model"], RequestOptions())])
        return runtime

    def get(self, route: str, name: str | None) -> LoadedModel:
        """The named model, or the only model ``route`` serves when no name is given.

        ``route`` is a key of :attr:`route_tasks` (``ner``, ``postures``, ``classify``).
        """
        if not self.ready:
            raise NotReady(self.load_error or "models are still loading")
        tasks = self.route_tasks.get(route, ())
        task = " or ".join(tasks) or route
        if name is not None:
            model = self.models.get(name)
            if model is None:
                raise ModelNotFound(
                    f"no {task} model named {name!r} (loaded: {sorted(self.models)})",
                    field="model",
                )
            if model.manifest.task not in tasks:
                raise ModelNotFound(
                    f"no {task} model named {name!r}: it is a {model.manifest.task} model",
                    field="model",
                )
            return model
        candidates = [m for m in self.models.values() if m.manifest.task in tasks]
        if not candidates:
            raise ModelNotFound(f"no {task} model is loaded", field="model")
        if len(candidates) > 1:
            names = sorted(m.name for m in candidates)
            raise InvalidInput(
                f"several {task} models are loaded; set model to one of {names}", field="model"
            )
        return candidates[0]
