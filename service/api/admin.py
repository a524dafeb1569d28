"""The admin API (``/v1/admin/...``): load and unload model versions and set a model's traffic
policy without a restart. Installed only when admin keys are configured (otherwise every admin
path is a 404); its keys are separate from the inference keys (docs/operating/versions.md)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from service.api.common import registry_of
from service.api.versions import VersionState, version_state, version_states
from service.bundle import BundleError, read_manifest
from service.errors import ERROR_RESPONSES, InvalidInput, ModelNotFound, Unauthorized
from service.keys import key_matches, presented_key
from service.registry import LoadedModel, ModelRegistry, bundle_dirs
from service.versions import routing
from service.versions.routing import RoutingPolicy

PREFIX = "/v1/admin"


class LoadRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    path: str | None = Field(
        default=None,
        description="The version's directory, relative to the bundles directory; default: the "
        "bundle directory whose manifest has this name and version.",
    )


class UnloadResponse(BaseModel):
    name: str
    version: str
    unloaded: bool = True
    memory_mb: float = Field(description="Memory the version held (its RSS growth at load).")


class AdminModelsResponse(BaseModel):
    versions: list[VersionState]


class RoutingResponse(BaseModel):
    model: str
    policy: RoutingPolicy
    versions: list[VersionState]


def admin_auth(keys: list[bytes]) -> Any:
    """A dependency refusing (401) a request without one of the admin keys."""

    async def check(request: Request) -> None:
        candidate = presented_key(request.scope["headers"])
        if candidate is None or not key_matches(candidate, keys):
            raise Unauthorized(
                "an admin key is required (Authorization: Bearer KEY or X-API-Key: KEY)"
                if candidate is None
                else "the admin key is not valid"
            )

    return Depends(check)


def admin_router(keys: list[bytes]) -> APIRouter:
    router = APIRouter(prefix=PREFIX, dependencies=[admin_auth(keys)], tags=["admin"])
    loads: set[asyncio.Task[LoadedModel]] = set()

    @router.get("/models", response_model=AdminModelsResponse, summary="Every loaded version")
    async def models(request: Request) -> AdminModelsResponse:
        return AdminModelsResponse(versions=version_states(registry_of(request)))

    @router.post(
        "/models/{name}/versions/{version}:load",
        response_model=VersionState,
        responses=ERROR_RESPONSES,
        summary="Load a version beside the others (verified, self-checked, warmed)",
    )
    async def load(
        name: str,
        version: str,
        request: Request,
        body: LoadRequest | None = None,
        wait: Annotated[bool, Query(description="Answer once it is ready or failed")] = False,
    ) -> VersionState:
        registry = registry_of(request)
        current = registry.groups.get(name)
        loaded = current.versions.get(version) if current is not None else None
        if loaded is not None and loaded.state != "failed":
            return version_state(registry, loaded)  # loaded, or loading: nothing to do
        directory = find_directory(registry, name, version, body.path if body else None)
        task = asyncio.create_task(asyncio.to_thread(registry.load_version, directory))
        loads.add(task)
        task.add_done_callback(loads.discard)
        if wait:
            return version_state(registry, await asyncio.shield(task))
        await asyncio.sleep(0.05)  # let it register as loading
        group = registry.groups.get(name)
        found = group.versions.get(version) if group is not None else None
        if found is None:
            return VersionState(name=name, version=version, state="loading", bundle=str(directory))
        return version_state(registry, found)

    @router.post(
        "/models/{name}/versions/{version}:unload",
        response_model=UnloadResponse,
        responses=ERROR_RESPONSES,
        summary="Stop routing to a version, let it finish its work, then free it",
    )
    async def unload(
        name: str,
        version: str,
        request: Request,
        force: Annotated[
            bool, Query(description="Unload even the only ready version (its model stops)")
        ] = False,
    ) -> UnloadResponse:
        model = await registry_of(request).unload_version(name, version, force)
        return UnloadResponse(
            name=name, version=version, memory_mb=round(model.memory_bytes / 2**20, 1)
        )

    @router.put(
        "/models/{name}/routing",
        response_model=RoutingResponse,
        responses=ERROR_RESPONSES,
        summary="Set a model's traffic policy (weights, sticky header, shadow)",
    )
    async def set_routing(name: str, policy: RoutingPolicy, request: Request) -> RoutingResponse:
        registry = registry_of(request)
        group = registry.groups.get(name)
        if group is None:
            raise ModelNotFound(f"no model named {name!r} (loaded: {sorted(registry.groups)})")
        loaded = [m.version for m in group.sorted_versions() if m.state != "failed"]
        problems = routing.validate(policy, loaded)
        if problems:
            field, _ = problems[0]
            raise InvalidInput("; ".join(f"{f}: {m}" for f, m in problems), field=field)
        group.set_policy(policy)
        versions = [s for s in version_states(registry) if s.name == name]
        return RoutingResponse(model=name, policy=group.policy, versions=versions)

    return router


def find_directory(registry: ModelRegistry, name: str, version: str, path: str | None) -> Path:
    """The directory of ``name`` ``version``: ``path`` (inside the bundles directory), else the
    bundle directory whose manifest names it; 422 / 404 otherwise."""
    root = registry.settings.bundles_dir.resolve()
    if path is not None:
        directory = (root / path).resolve()
        if not directory.is_relative_to(root) or directory == root:
            raise InvalidInput(f"path {path!r} is outside the bundles directory", field="path")
        try:
            manifest = read_manifest(directory, registry.families.manifests)
        except BundleError as exc:
            raise InvalidInput(f"path {path!r}: {exc}", field="path") from exc
        if (manifest.name, manifest.version) != (name, version):
            raise InvalidInput(
                f"path {path!r} holds {manifest.name}@{manifest.version}, not {name}@{version}",
                field="path",
            )
        return directory
    for directory in bundle_dirs(root):
        try:
            manifest = read_manifest(directory, registry.families.manifests)
        except BundleError:
            # an unreadable manifest under name/version is that version's directory
            if (directory.parent.name, directory.name) == (name, version):
                return directory
            continue
        if (manifest.name, manifest.version) == (name, version):
            return directory
    raise ModelNotFound(f"no bundle directory of {name}@{version} in {root}")
