"""One loader: a bundle directory -> its verified manifest and a ready runtime.

The service's registry, the batch scorer, the default builds' evaluation and the export stage's
calibration all load a bundle this way: the manifest is verified (schema, files, sha256), an ONNX
Runtime session is opened, the bundle's stored self-check sample is re-run on this CPU, and the
runtime registered for the bundle's (task, head) is built.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter

from service.bundle import (
    MANIFEST_FILE,
    BundleError,
    manifest_adapter,
    read_manifest,
    verify_bundle,
)
from service.families import SERVING_FAMILIES, composed_table, runtime_table
from service.manifest import BundleManifest, ManifestBase
from service.runtime.cpu_features import current_cpu
from service.runtime.family import (
    ComposedFactory,
    Resolve,
    Resolved,
    Runtime,
    RuntimeFactory,
    ServingFamily,
)
from service.runtime.session import InferenceSession, MeteredSession, OnnxSession
from service.selfcheck import SelfCheckReport, run_selfcheck
from service.settings import Settings

log = logging.getLogger("service.loader")


class Families:
    """The serving families a loader knows (default: the registered ones), as lookup tables."""

    def __init__(self, families: Iterable[ServingFamily] = SERVING_FAMILIES) -> None:
        self.families = tuple(families)
        self.runtimes: dict[tuple[str, str], RuntimeFactory] = runtime_table(self.families)
        self.composed: dict[tuple[str, str], ComposedFactory] = composed_table(self.families)
        self.sessions = {f.task: f.session for f in self.families}
        self.manifests: TypeAdapter[BundleManifest] = manifest_adapter(
            f.manifest for f in self.families
        )

    def verify(self, bundle_dir: Path) -> BundleManifest:
        """The bundle's verified manifest; BundleError if no registered runtime serves it."""
        manifest = verify_bundle(bundle_dir, self.manifests)
        table = self.composed if manifest.references() else self.runtimes
        if (manifest.task, manifest.head) not in table:
            raise BundleError(
                f"{bundle_dir}: no runtime serves task {manifest.task!r} with head "
                f"{manifest.head!r} (known: {sorted(table)})"
            )
        return manifest


@dataclass
class LoadedRuntime:
    manifest: BundleManifest
    runtime: Runtime[Any, Any]
    selfcheck: SelfCheckReport | None  # None: no graph of its own, nothing to re-run


def build_runtime(
    manifest: BundleManifest,
    bundle_dir: Path,
    settings: Settings,
    families: Families,
    metered_as: str | None = None,
    resolve: Resolve | None = None,
) -> LoadedRuntime:
    """Session, self-check (raises SelfCheckError) and the family's runtime for a verified
    manifest; ``metered_as``: record the session's batches under this model name. A bundle
    that runs other models (``references()``) is composed from the models ``resolve`` returns
    by name; a family with its own ``session`` factory (no ONNX graph) opens that instead and
    has no stored sample."""
    if manifest.references():
        if resolve is None:
            raise BundleError(
                f"{manifest.name} runs other models ({', '.join(manifest.references())}) and "
                "none can be resolved here"
            )
        make = families.composed[(manifest.task, manifest.head)]
        return LoadedRuntime(manifest, make(manifest, bundle_dir, settings, resolve), None)
    own = families.sessions.get(manifest.task)
    if own is not None:
        inner = own(manifest, bundle_dir, settings)
        selfcheck = SelfCheckReport(status="absent", cpu=current_cpu())
    elif isinstance(manifest, ManifestBase) and manifest.has_graph:
        inner = OnnxSession(
            bundle_dir / manifest.onnx.file,
            manifest.onnx.output,
            settings.intra_op_threads,
            settings.providers,
        )
        # Before any traffic: the bundle must reproduce its stored sample on this CPU.
        selfcheck = run_selfcheck(manifest, bundle_dir, inner)
    else:
        raise BundleError(
            f"{bundle_dir}: a {manifest.task} bundle has no ONNX graph and its family no session"
        )
    log.info(selfcheck.summary(manifest.name))
    session: InferenceSession = (
        inner if metered_as is None else MeteredSession(inner, metered_as, manifest.version)
    )
    factory = families.runtimes[(manifest.task, manifest.head)]
    return LoadedRuntime(manifest, factory(manifest, bundle_dir, session, settings), selfcheck)


def load_runtime(
    bundle_dir: Path, settings: Settings | None = None, families: Families | None = None
) -> LoadedRuntime:
    """Verify ``bundle_dir`` and build its runtime, as the service does (no warm-up, no
    metrics)."""
    families = families or Families()
    # the bundle's own directory: a default bundles_dir need not exist where this runs
    settings = settings or Settings(bundles_dir=bundle_dir.parent)
    manifest = families.verify(bundle_dir)
    return build_runtime(
        manifest,
        bundle_dir,
        settings,
        families,
        resolve=sibling_resolver(bundle_dir, settings, families),
    )


def sibling_resolver(bundle_dir: Path, settings: Settings, families: Families) -> Resolve:
    """Resolve a referenced model by its manifest name among the bundle directories next to
    ``bundle_dir`` (the bundles directory), loading each at most once."""
    loaded: dict[str, Resolved] = {}

    def resolve(name: str) -> Resolved:
        if name in loaded:
            return loaded[name]
        for sibling in sorted(bundle_dir.parent.glob(f"*/{MANIFEST_FILE}")):
            directory = sibling.parent
            if directory == bundle_dir:
                continue
            try:
                found = read_manifest(directory, families.manifests).name
            except BundleError:
                continue
            if found == name:
                member = load_runtime(directory, settings, families)
                loaded[name] = Resolved(member.manifest, directory, member.runtime)
                return loaded[name]
        raise BundleError(f"no bundle named {name!r} next to {bundle_dir} (in {bundle_dir.parent})")

    return resolve
