"""Loaded models: discovers bundles, verifies them at start-up, loads and warms them up.

Verification (manifest schema, files present and inside the bundle, ONNX sha256) runs before the
server accepts traffic, so a broken bundle stops start-up with a clear message; a bundle that fails
later (session, self-check, warm-up) sets ``load_error`` and ``python -m service`` exits 3 too
(docs/reliability.md, the broken-bundle policy). Creating sessions, the self-check (the
bundle's stored sample must give the same outputs on this CPU) and the warm-up run happen in the
background; ``/readyz`` turns 200 only when they are done, and names the reason if one failed.

Several versions of one model name may be loaded (``service.versions``): each version has its own
runtime and worker; a request picks its version once, by the model's routing table
(``VersionGroup``). Versions loaded after start-up (admin API, bundles-directory watch) go through
the same verification, self-check, warm-up and memory guard, one load at a time; one that fails
is marked failed with its reason and never receives traffic (docs/operating/versions.md).
"""

from __future__ import annotations

import asyncio
import gc
import logging
import threading
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from service.bundle import MANIFEST_FILE, BundleError, read_manifest
from service.errors import InvalidInput, ModelNotFound, NotReady, ServiceError
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
from service.runtime.family import RequestOptions, Resolved, ServingFamily
from service.runtime.loader import Families, build_runtime
from service.selfcheck import SelfCheckError
from service.settings import Settings
from service.versions import memory
from service.versions.caller import header
from service.versions.group import VersionGroup
from service.versions.loaded import LoadedModel as LoadedModel
from service.versions.routing import validate
from service.versions.shadow import ShadowRunner
from service.versions.state import FailureKind, version_key

log = logging.getLogger("service.registry")


class Conflict(ServiceError):
    status, type = 409, "conflict"


class LoadRefused(Exception):
    """A version that may not load; ``kind`` is the metric's reason."""

    def __init__(self, message: str, kind: FailureKind) -> None:
        super().__init__(message)
        self.kind = kind


def failure_kind(exc: BaseException) -> FailureKind:
    if isinstance(exc, LoadRefused):
        return exc.kind
    if isinstance(exc, SelfCheckError):
        return "selfcheck"
    if isinstance(exc, BundleError):
        return "sha256" if "sha256" in str(exc) else "manifest"
    return "error"


def bundle_dirs(root: Path) -> list[Path]:
    """Bundle directories under ``root``: one level deep (``root/ner-food``) or two
    (``root/ner-food/2``); each holds a manifest. Hidden directories (an export's staging
    ``.name.*.partial``) are not bundles yet."""
    found = {p.parent for p in root.glob(f"*/{MANIFEST_FILE}")}
    found |= {p.parent for p in root.glob(f"*/*/{MANIFEST_FILE}")}
    return sorted(
        d for d in found if not any(part.startswith(".") for part in d.relative_to(root).parts)
    )


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
        self.groups: dict[str, VersionGroup] = {}
        self.ready = False
        self.load_error: str | None = None
        # Set on SIGTERM (service.__main__): /readyz answers 503 while queued work still runs.
        self.draining = False
        self._load_lock = threading.Lock()  # one load at a time: RSS growth is its own
        self._members: dict[LoadedModel, list[LoadedModel]] = {}  # ensemble -> its members
        self._resolving: list[LoadedModel] = []  # members resolved by the load under way
        self.shadow = ShadowRunner(settings.shadow_queue, settings.max_request_tokens)

    # --- the versions --------------------------------------------------------------------------

    @property
    def models(self) -> dict[str, LoadedModel]:
        """Each model name's primary version (the stable one; ``VersionGroup.primary``)."""
        out: dict[str, LoadedModel] = {}
        for name, group in list(self.groups.items()):
            primary = group.primary()
            if primary is not None:
                out[name] = primary
        return out

    def serving_models(self) -> dict[str, LoadedModel]:
        """:attr:`models` that have a ready version: what a request naming no model may get (a
        new model still loading, or whose only version failed, never makes such a request
        ambiguous)."""
        return {n: m for n, m in self.models.items() if n in self.groups and self.groups[n].ready()}

    def all_versions(self) -> list[LoadedModel]:
        return [m for g in list(self.groups.values()) for m in g.sorted_versions()]

    def group(self, name: str) -> VersionGroup:
        """The versions of ``name`` (created, with its ``INFER_ROUTING`` policy, if new)."""
        group = self.groups.get(name)
        if group is None:
            group = VersionGroup(name, self.settings.routing.get(name))
            self.groups[name] = group
        return group

    def add(self, model: LoadedModel) -> None:
        self.group(model.name).add(model)

    def serving(self) -> bool:
        """Ready: loaded at start-up, and every serving model has a ready version. A model whose
        only versions are still loading or failed (a new name) does not count: a failing new
        version never turns the replica unready."""
        return self.ready and all(
            g.ready()
            for g in list(self.groups.values())
            if any(m.state in ("ready", "draining") for m in list(g.versions.values()))
        )

    # --- start-up ------------------------------------------------------------------------------

    def discover(self) -> None:
        """Verify every selected bundle; raise BundleError naming the first broken one.

        With ``INFER_MODELS`` set only the bundles it names are verified and loaded: the others'
        manifests are read for their names, and one that cannot be read is skipped with a
        warning (it is not served), so a broken bundle left out never stops start-up.
        """
        root = self.settings.bundles_dir
        wanted = set(self.settings.models)
        found = bundle_dirs(root)
        seen: dict[tuple[str, str], Path] = {}
        for bundle_dir in found:
            if wanted:
                try:
                    name = read_manifest(bundle_dir, self.families.manifests).name
                except BundleError as exc:
                    if bundle_dir.name in wanted or bundle_dir.parent.name in wanted:
                        raise
                    first = str(exc).splitlines()[0]
                    log.warning(
                        "skipped %s (not in INFER_MODELS, unreadable): %s", bundle_dir, first
                    )
                    continue
                if name not in wanted:
                    continue
            manifest = self.families.verify(bundle_dir)
            self._check_unique(seen, manifest, bundle_dir)
            self.add(LoadedModel(bundle_dir, manifest))
        self._add_references(found, seen)
        missing = wanted - set(self.groups)
        if missing:
            raise BundleError(f"bundles {sorted(missing)} not found in {root}")
        if not self.groups:
            raise BundleError(f"no bundles (sub-directories with {MANIFEST_FILE}) in {root}")
        self._check_parse_settings()
        self._check_routing()

    def _check_routing(self) -> None:
        """``INFER_ROUTING`` must name loaded models and versions (start-up error)."""
        for name, policy in self.settings.routing.items():
            group = self.groups.get(name)
            if group is None:
                raise BundleError(
                    f"INFER_ROUTING names model {name!r}, which is not loaded "
                    f"(loaded: {sorted(self.groups)})"
                )
            loaded = [m.version for m in group.sorted_versions()]
            for field, message in validate(policy, loaded):
                raise BundleError(f"INFER_ROUTING.{name}.{field}: {message}")

    @staticmethod
    def _check_unique(
        seen: dict[tuple[str, str], Path], manifest: BundleManifest, bundle_dir: Path
    ) -> None:
        key = (manifest.name, manifest.version)
        if key in seen:
            raise BundleError(
                f"two bundles are named {manifest.name!r} version {manifest.version!r}: "
                f"{seen[key]} and {bundle_dir}"
            )
        seen[key] = bundle_dir

    def _add_references(self, found: list[Path], seen: dict[tuple[str, str], Path]) -> None:
        """The models a loaded bundle runs (an ensemble's members) are loaded too, even when
        ``INFER_MODELS`` leaves them out; one that no bundle provides stops start-up."""
        pending = [m for m in self.all_versions() if m.manifest.references()]
        by_name: dict[str, list[Path]] | None = None
        while pending:
            model = pending.pop()
            for name in model.manifest.references():
                if name in self.groups:
                    continue
                if by_name is None:
                    by_name = {}
                    for bundle_dir in found:
                        try:
                            found_name = read_manifest(bundle_dir, self.families.manifests).name
                        except BundleError:
                            continue
                        by_name.setdefault(found_name, []).append(bundle_dir)
                if name not in by_name:
                    raise BundleError(
                        f"{model.name} runs model {name!r}, which no bundle in "
                        f"{self.settings.bundles_dir} provides"
                    )
                for bundle_dir in by_name[name]:
                    manifest = self.families.verify(bundle_dir)
                    self._check_unique(seen, manifest, bundle_dir)
                    member = LoadedModel(bundle_dir, manifest)
                    self.add(member)
                    pending.append(member)

    def _load_order(self) -> list[LoadedModel]:
        """Every version after the models it runs (members before their ensemble)."""
        order: list[LoadedModel] = []
        placed: set[str] = set()
        visiting: set[str] = set()

        def place(name: str) -> None:
            if name in placed:
                return
            if name in visiting:
                raise BundleError(f"{name} runs itself through its references")
            visiting.add(name)
            versions = self.groups[name].sorted_versions()
            for model in versions:
                for member in model.manifest.references():
                    place(member)
            placed.add(name)
            order.extend(versions)

        for name in list(self.groups):
            place(name)
        return order

    def _resolve(self, name: str) -> Resolved:
        """A referenced model: its routed (stable) ready version when the ensemble loads."""
        group = self.groups.get(name)
        model = group.primary() if group is not None else None
        if model is None or model.runtime is None:
            raise BundleError(f"no loaded model named {name!r} (loaded: {sorted(self.groups)})")
        self._resolving.append(model)
        return Resolved(model.manifest, model.bundle_dir, model.runtime)

    def _check_parse_settings(self) -> None:
        """``INFER_PARSE_*_MODEL`` must name a loaded model of the right kind (start-up error)."""
        s = self.settings
        models = self.models
        for setting, name, route, head in (
            ("INFER_PARSE_INTENT_MODEL", s.parse_intent_model, "classify", "single-label"),
            ("INFER_PARSE_NER_MODEL", s.parse_ner_model, "ner", None),
        ):
            if name is None:
                continue
            model = models.get(name)
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
                    f"{sorted(models)}); /v1/parse could never answer"
                )

    def load(self) -> None:
        """Create ONNX Runtime sessions and run one warm-up inference per version (blocking)."""
        for model in self._load_order():
            try:
                with self._load_lock:
                    self._bring_up(model)
            except Exception as exc:
                self._failed(model, exc)
                self.load_error = str(model.reason)
                if isinstance(exc, SelfCheckError | LoadRefused):
                    log.error("not serving: %s", exc)
                else:
                    log.exception("loading models failed")
                return
        self.ready = True
        READY.set(1)

    # --- one version's lifecycle ---------------------------------------------------------------

    def _bring_up(self, model: LoadedModel) -> None:
        """Memory guard, session + self-check, warm-up, worker: ``model`` ends ready."""
        group = self.group(model.name)
        budget = memory.budget_bytes(self.settings.max_model_memory_mb)
        used = sum(m.memory_bytes for m in self.all_versions() if m is not model)
        estimate = memory.bundle_bytes(model.bundle_dir)
        if budget is not None and used + estimate > budget:
            raise LoadRefused(
                self._memory_message(model, used, estimate, budget, "files"), "memory"
            )
        before = memory.rss_bytes()
        model.state = "self_checking"
        group.refresh()
        self._resolving = []
        loaded = build_runtime(
            model.manifest,
            model.bundle_dir,
            self.settings,
            self.families,
            metered_as=model.name,
            resolve=self._resolve,
        )
        if self._resolving:
            self._members[model] = self._resolving
        model.selfcheck = loaded.selfcheck
        runtime = loaded.runtime
        model.runtime = runtime
        model.state = "warming"
        group.refresh()
        runtime.run_prepared([runtime.prepare(["warm up the model"], RequestOptions())])
        model.memory_bytes = max(memory.rss_bytes() - before, 0)
        if budget is not None and used + model.memory_bytes > budget:
            model.runtime = None
            raise LoadRefused(
                self._memory_message(model, used, model.memory_bytes, budget, "measured"),
                "memory",
            )
        model.batcher = Batcher(
            model.name,
            runtime.run_prepared,
            self._limits(),
            runtime.run_slice,
            runtime.merge,
            version=model.version,
        )
        manifest = model.manifest
        provider = runtime.session.provider
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
                REVIEW_DOCUMENTS.labels(model.name, model.version, decision)
        model.state = "ready"
        group.refresh()
        log.info(
            "loaded %s %s (%s, %.0f MB)", model.name, manifest.version, provider,
            model.memory_bytes / memory.MB,
        )  # fmt: skip

    @staticmethod
    def _memory_message(model: LoadedModel, used: int, adding: int, budget: int, how: str) -> str:
        what = "its files" if how == "files" else "its measured load"
        return (
            f"{model.ref} refused: loaded models hold {used / memory.MB:.0f} MB and {what} add "
            f"{adding / memory.MB:.0f} MB, over the model memory limit of "
            f"{budget / memory.MB:.0f} MB (INFER_MAX_MODEL_MEMORY_MB)"
        )

    def _failed(self, model: LoadedModel, exc: BaseException) -> None:
        kind = failure_kind(exc)
        message = (
            str(exc)
            if isinstance(exc, BundleError | SelfCheckError | LoadRefused)
            else (f"{type(exc).__name__}: {exc}")
        )
        model.state = "failed"
        model.reason = message
        model.runtime = None
        model.batcher = None
        self._members.pop(model, None)  # a failed ensemble pins no member
        MODEL_LOAD_FAILURES.labels(model.name, model.version, kind).inc()
        self.group(model.name).refresh()

    def load_version(self, bundle_dir: Path) -> LoadedModel:
        """Verify and load the version in ``bundle_dir`` beside the loaded ones (blocking; call
        it off the event loop). A version that fails is kept, state failed with its reason, and
        never routed to; the versions already serving are untouched."""
        try:
            manifest = self.families.verify(bundle_dir)
        except BundleError as exc:
            model = LoadedModel(bundle_dir, self._unverified(bundle_dir))
            name, version = model.name, model.version
            current = self.groups[name].versions.get(version) if name in self.groups else None
            if current is None or current.state == "failed":
                self.group(name).add(model)  # listed, failed, with its reason
            self._failed(model, exc)
            log.error("version in %s refused: %s", bundle_dir, exc)
            return model
        group = self.group(manifest.name)
        current = group.versions.get(manifest.version)
        if current is not None and current.state != "failed":
            if current.bundle_dir.resolve() != bundle_dir.resolve():
                raise Conflict(
                    f"{current.ref} is already loaded from {current.bundle_dir}; two bundles "
                    f"may not have the same name and version ({bundle_dir})"
                )
            return current
        model = LoadedModel(bundle_dir, manifest)
        group.add(model)
        try:
            with self._load_lock:
                self._bring_up(model)
        except Exception as exc:
            self._failed(model, exc)
            log.error("version %s refused: %s", model.ref, model.reason)
        return model

    def _unverified(self, bundle_dir: Path) -> Any:
        """The manifest of a bundle that failed verification, when it can be read (a bad
        sha256); else a stand-in naming it by its path (``name/version``, or the directory's
        name and version "?")."""
        try:
            return read_manifest(bundle_dir, self.families.manifests)
        except BundleError:
            root = self.settings.bundles_dir.resolve()
            parent = bundle_dir.resolve().parent
            name, version = (
                (parent.name, bundle_dir.name) if parent != root else (bundle_dir.name, "?")
            )
            return SimpleNamespace(name=name, version=version, task="?", references=lambda: ())

    def forget(self, model: LoadedModel) -> None:
        """Drop a failed version from the listing (its directory is gone)."""
        group = self.groups.get(model.name)
        if group is not None and group.versions.get(model.version) is model:
            group.remove(model.version)
            if not group.versions:
                self.groups.pop(model.name, None)

    async def unload_version(self, name: str, version: str, force: bool = False) -> LoadedModel:
        """Stop routing to the version, let it finish its in-flight and queued work, then
        free it. Refused (409) when it is the only ready version with traffic (unless
        ``force``) or when a loaded ensemble runs it."""
        group = self.groups.get(name)
        model = group.versions.get(version) if group is not None else None
        if group is None or model is None:
            loaded = sorted(group.versions, key=version_key) if group else []
            raise ModelNotFound(f"model {name!r} has no version {version!r} (loaded: {loaded})")
        users = [e.ref for e, members in self._members.items() if model in members]
        if users:
            raise Conflict(f"{model.ref} is run by {users}; unload those first")
        others = [v for v in group.ready() if v != version]
        if model.state == "ready" and not others and not force:
            raise Conflict(
                f"{model.ref} is the only ready version of {name!r}; load another first or "
                "unload with force"
            )
        if model.state == "draining":
            raise Conflict(f"{model.ref} is already being unloaded")
        if model.state in ("loading", "self_checking", "warming"):
            raise Conflict(f"{model.ref} is {model.state}; unload it once it is ready or failed")
        model.state = "draining"
        group.refresh()  # no new request picks it from here on
        await self._drain(model)
        batcher = model.batcher
        if batcher is not None:
            await asyncio.to_thread(batcher.close, self.settings.graceful_timeout_seconds)
        group.remove(version)
        self._members.pop(model, None)
        if not group.versions:
            self.groups.pop(name, None)
        drop_model_info(model)
        model.runtime = None
        model.batcher = None
        gc.collect()
        log.info("unloaded %s", model.ref)
        return model

    @staticmethod
    async def _drain(model: LoadedModel, poll_s: float = 0.02) -> None:
        """Until no request holds the version: two polls in a row with none in flight (a request
        that picked it just before the switch reaches its worker within one loop turn)."""
        quiet = 0
        while quiet < 2:
            await asyncio.sleep(poll_s)
            quiet = quiet + 1 if model.inflight == 0 else 0

    def close(self) -> None:
        """Stop every version's worker after it has answered what is queued; joined, so that no
        thread is inside ONNX Runtime when the interpreter exits (that aborts the process)."""
        for model in self.all_versions():
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

    # --- requests ------------------------------------------------------------------------------

    def get(self, route: str, name: str | None) -> LoadedModel:
        """The version a request runs on. ``name``: a model name (its routed version) or
        ``name@version`` (that version); without a name, the only model ``route`` serves, or
        else the only one whose family's own route it is (``ServingFamily.route``, not
        ``also_routes``).

        ``route`` is a key of :attr:`route_tasks` (``ner``, ``postures``, ``classify``).
        """
        if not self.ready:
            raise NotReady(self.load_error or "models are still loading")
        tasks = self.route_tasks.get(route, ())
        task = " or ".join(tasks) or route
        models = self.models
        if name is not None:
            base, at, pinned = name.partition("@")
            model = models.get(base)
            if model is None:
                raise ModelNotFound(
                    f"no {task} model named {base!r} (loaded: {sorted(models)})", field="model"
                )
            if model.manifest.task not in tasks:
                raise ModelNotFound(
                    f"no {task} model named {base!r}: it is a {model.manifest.task} model",
                    field="model",
                )
            return self._pinned(base, pinned) if at else self._route(base)
        candidates = [m for m in self.serving_models().values() if m.manifest.task in tasks]
        # bundles that yield on this route are taken unnamed only when nothing else serves it
        candidates = [m for m in candidates if not self._yields(route, m)] or candidates
        if not candidates:
            raise ModelNotFound(f"no {task} model is loaded", field="model")
        # Default per route: when several models serve it, the only one whose family's own
        # route it is answers (a posture bundle on /v1/postures beside an ensemble that serves
        # that route too); models served there through ``also_routes`` must be named.
        own = [m for m in candidates if self.by_task[m.manifest.task].route == route]
        if len(candidates) > 1 and len(own) == 1:
            return self._route(own[0].name)
        if len(candidates) > 1:
            names = sorted(m.name for m in candidates)
            raise InvalidInput(
                f"several {task} models are loaded; set model to one of {names}", field="model"
            )
        return self._route(candidates[0].name)

    def _route(self, name: str) -> LoadedModel:
        group = self.groups[name]
        sticky = group.table.sticky_header
        model = group.pick(header(sticky) if sticky else None)
        if model is None:
            raise NotReady(f"no version of model {name!r} is ready")
        return model

    def _pinned(self, name: str, version: str) -> LoadedModel:
        group = self.groups[name]
        model = group.versions.get(version)
        if model is None or model.state == "failed":
            loaded = [v for v in sorted(group.versions, key=version_key)
                      if group.versions[v].state != "failed"]  # fmt: skip
            raise ModelNotFound(
                f"model {name!r} has no version {version!r} (loaded: {loaded})", field="model"
            )
        if model.state != "ready":
            raise NotReady(f"{model.ref} is {model.state.replace('_', '-')}, not ready")
        return model

    def _yields(self, route: str, model: LoadedModel) -> bool:
        """Whether ``model`` serves ``route`` only on the side (``yields_on_also_routes``)."""
        family = self.by_task.get(model.manifest.task)
        return family is not None and family.yields_on_also_routes and route in family.also_routes


def drop_model_info(model: LoadedModel) -> None:
    """Drop the unloaded version's ``infer_model_info`` series."""
    for labels in list(getattr(MODEL_INFO, "_metrics", {})):
        if labels[:2] == (model.name, model.version):
            MODEL_INFO.remove(*labels)
