"""The bundles-directory watch (``INFER_WATCH``): every ``INFER_WATCH_INTERVAL_S`` seconds, a new
complete version directory (its manifest present; exports rename a finished staging directory
into place) is loaded beside the others, and the version of a directory that disappeared is
drained and unloaded. A directory whose files change in place is not reloaded: publish a new
version instead. A version that failed, or that was unloaded through the admin API, is not loaded
again until its directory is removed and published again."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import TYPE_CHECKING

from service.bundle import BundleError, read_manifest
from service.errors import ServiceError

if TYPE_CHECKING:
    from service.registry import ModelRegistry

log = logging.getLogger("service.watch")


class Watcher:
    def __init__(self, registry: ModelRegistry) -> None:
        self.registry = registry
        self.interval_s = registry.settings.watch_interval_s
        self._tried: set[Path] = set()  # directories loaded (or refused) by this watch

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.interval_s)
            try:
                await self.poll()
            except Exception:  # the watch must outlive any one poll
                log.exception("bundles-directory poll failed")

    async def poll(self) -> None:
        """One pass: load new version directories, unload the versions whose directory is gone."""
        from service.registry import bundle_dirs

        registry = self.registry
        if not registry.ready:
            return
        root = registry.settings.bundles_dir
        present = {d.resolve(): d for d in bundle_dirs(root)}
        known = {m.bundle_dir.resolve() for m in registry.all_versions()}
        # a directory seen loaded stays "tried": unloaded through the admin API, it is not
        # loaded again while it stays; removed, it is forgotten (a new one there is new)
        self._tried = (self._tried | known) & set(present)
        for resolved, directory in present.items():
            if resolved in known or resolved in self._tried or not self._wanted(directory):
                continue
            self._tried.add(resolved)
            log.info("watch: new version directory %s", directory)
            model = await asyncio.to_thread(registry.load_version, directory)
            log.info("watch: %s is %s", model.ref, model.state)
        for model in registry.all_versions():
            if model.bundle_dir.resolve() in present:
                continue
            if model.state == "failed":
                registry.forget(model)
            elif model.state == "ready":
                log.info("watch: %s's directory is gone; unloading it", model.ref)
                try:
                    await registry.unload_version(model.name, model.version)
                except ServiceError as exc:
                    log.warning("watch: %s stays loaded: %s", model.ref, exc)

    def _wanted(self, directory: Path) -> bool:
        """With ``INFER_MODELS`` set, only the versions of the models it names."""
        wanted = self.registry.settings.models
        if not wanted:
            return True
        try:
            return read_manifest(directory, self.registry.families.manifests).name in wanted
        except BundleError:
            return False
