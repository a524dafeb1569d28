"""Loaded models: discovers bundles, verifies them at start-up, loads and warms them up.

Verification (manifest schema, files present and inside the bundle, ONNX sha256) runs before the
server accepts traffic, so a broken bundle stops start-up with a clear message; a bundle that fails
later (session, self-check, warm-up) sets ``load_error`` and ``python -m service`` exits 3 too
(docs/reliability.md, the broken-bundle policy). Creating sessions, the self-check (the
bundle's stored sample must give the same outputs on this CPU) and the warm-up run happen in the
background; ``/readyz`` turns 200 only when they are done, and names the reason if one failed.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from service.bundle import MANIFEST_FILE, BundleError, read_manifest
from service.errors import InvalidInput, ModelNotFound, NotReady
from service.families import SERVING_FAMILIES, family_table, route_table
from service.manifest import BundleManifest
from service.metrics import (
    MODEL_INFO,
    MODEL_LOAD_FAILURES,
    QUEUE_CAPACITY,
    READY,
    REVIEW_DOCUMENTS,
    VALIDATION_REVIEW_RATE,
)
from service.runtime.batcher import Batcher, BatchLimits
from service.runtime.family import RequestOptions, Resolved, Runtime, ServingFamily, phases_of
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
        """Verify every selected bundle; raise BundleError naming the first broken one.

        With ``INFER_MODELS`` set only the bundles it names are verified and loaded: the others'
        manifests are read for their names, and one that cannot be read is skipped with a
        warning (it is not served), so a broken bundle left out never stops start-up.
        """
        root = self.settings.bundles_dir
        wanted = set(self.settings.models)
        found = sorted(p.parent for p in root.glob(f"*/{MANIFEST_FILE}"))
        for bundle_dir in found:
            if wanted:
                try:
                    name = read_manifest(bundle_dir, self.families.manifests).name
                except BundleError as exc:
                    if bundle_dir.name in wanted:
                        raise
                    first = str(exc).splitlines()[0]
                    log.warning(
                        "skipped %s (not in INFER_MODELS, unreadable): %s", bundle_dir, first
                    )
                    continue
                if name not in wanted:
                    continue
            manifest = self.families.verify(bundle_dir)
            if manifest.name in self.models:
                raise BundleError(f"two bundles are named {manifest.name!r} in {root}")
            self.models[manifest.name] = LoadedModel(bundle_dir, manifest)
        self._add_references(found)
        missing = wanted - set(self.models)
        if missing:
            raise BundleError(f"bundles {sorted(missing)} not found in {root}")
        if not self.models:
            raise BundleError(f"no bundles (sub-directories with {MANIFEST_FILE}) in {root}")
        self._check_parse_settings()

    def _add_references(self, found: list[Path]) -> None:
        """The models a loaded bundle runs (an ensemble's members) are loaded too, even when
        ``INFER_MODELS`` leaves them out; one that no bundle provides stops start-up."""
        pending = [m for m in self.models.values() if m.manifest.references()]
        by_name: dict[str, Path] | None = None
        while pending:
            model = pending.pop()
            for name in model.manifest.references():
                if name in self.models:
                    continue
                if by_name is None:
                    by_name = {}
                    for bundle_dir in found:
                        try:
                            by_name[read_manifest(bundle_dir, self.families.manifests).name] = (
                                bundle_dir
                            )
                        except BundleError:
                            continue
                if name not in by_name:
                    raise BundleError(
                        f"{model.name} runs model {name!r}, which no bundle in "
                        f"{self.settings.bundles_dir} provides"
                    )
                manifest = self.families.verify(by_name[name])
                self.models[name] = LoadedModel(by_name[name], manifest)
                pending.append(self.models[name])

    def _load_order(self) -> list[LoadedModel]:
        """Every model after the models it runs (members before their ensemble)."""
        order: list[LoadedModel] = []
        placed: set[str] = set()
        visiting: set[str] = set()

        def place(model: LoadedModel) -> None:
            if model.name in placed:
                return
            if model.name in visiting:
                raise BundleError(f"{model.name} runs itself through its references")
            visiting.add(model.name)
            for name in model.manifest.references():
                place(self.models[name])
            placed.add(model.name)
            order.append(model)

        for model in self.models.values():
            place(model)
        return order

    def _resolve(self, name: str) -> Resolved:
        model = self.models.get(name)
        if model is None or model.runtime is None:
            raise BundleError(f"no loaded model named {name!r} (loaded: {sorted(self.models)})")
        return Resolved(model.manifest, model.bundle_dir, model.runtime)

    def _check_parse_settings(self) -> None:
        """``INFER_PARSE_*_MODEL`` must name a loaded model of the right kind (start-up error)."""
        s = self.settings
        for setting, name, route, head in (
            ("INFER_PARSE_INTENT_MODEL", s.parse_intent_model, "classify", "single-label"),
            ("INFER_PARSE_NER_MODEL", s.parse_ner_model, "ner", None),
        ):
            if name is None:
                continue
            model = self.models.get(name)
            kind = f"a {head} model of /v1/{route}" if head else f"a model of /v1/{route}"
            alone = self.route_tasks.get("parse", ())
            if setting == "INFER_PARSE_INTENT_MODEL" and model and model.manifest.task in alone:
                continue  # a bundle that answers /v1/parse alone (intent and entities)
            if (
                model is None
                or model.manifest.task not in self.route_tasks.get(route, ())
                or (head and model.manifest.head != head)
            ):
                raise BundleError(
                    f"{setting}={name!r} names no loaded bundle that is {kind} (loaded: "
                    f"{sorted(self.models)}); /v1/parse could never answer"
                )

    def load(self) -> None:
        """Create ONNX Runtime sessions and run one warm-up inference per model (blocking)."""
        try:
            for model in self._load_order():
                model.runtime = self._build_runtime(model)
                model.batcher = Batcher(
                    model.name,
                    model.runtime.run_prepared,
                    self._limits(),
                    model.runtime.run_slice,
                    model.runtime.merge,
                    phases_of(model.runtime),
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
                if manifest.automation is not None:
                    VALIDATION_REVIEW_RATE.labels(model.name).set(manifest.automation.review_rate)
                    for decision in ("review", "automatic"):  # series from the start, at 0
                        REVIEW_DOCUMENTS.labels(model.name, decision)
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
            max_queue_tokens=s.max_queue_tokens,
            shed=s.shed_late_requests,
            order=s.large_request_order,
            max_tokenizing=s.max_tokenizing,
        )

    def _build_runtime(self, model: LoadedModel) -> Runtime[Any, Any]:
        loaded = build_runtime(
            model.manifest,
            model.bundle_dir,
            self.settings,
            self.families,
            metered_as=model.name,
            resolve=self._resolve,
        )
        model.selfcheck = loaded.selfcheck
        runtime = loaded.runtime
        runtime.run_prepared([runtime.prepare(["warm up the model"], RequestOptions())])
        return runtime

    def get(self, route: str, name: str | None) -> LoadedModel:
        """The named model; without a name, the only model ``route`` serves, or else the only
        one whose family's own route it is (``ServingFamily.route``, not ``also_routes``).

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
        # bundles that yield on this route are taken unnamed only when nothing else serves it
        candidates = [m for m in candidates if not self._yields(route, m)] or candidates
        if not candidates:
            raise ModelNotFound(f"no {task} model is loaded", field="model")
        # Default per route: when several models serve it, the only one whose family's own
        # route it is answers (a posture bundle on /v1/postures beside an ensemble that serves
        # that route too); models served there through ``also_routes`` must be named.
        own = [m for m in candidates if self.by_task[m.manifest.task].route == route]
        if len(candidates) > 1 and len(own) == 1:
            return own[0]
        if len(candidates) > 1:
            names = sorted(m.name for m in candidates)
            raise InvalidInput(
                f"several {task} models are loaded; set model to one of {names}", field="model"
            )
        return candidates[0]

    def _yields(self, route: str, model: LoadedModel) -> bool:
        """Whether ``model`` serves ``route`` only on the side (``yields_on_also_routes``)."""
        family = self.by_task.get(model.manifest.task)
        return family is not None and family.yields_on_also_routes and route in family.also_routes
