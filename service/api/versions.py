"""What a loaded model version looks like from outside: state, reason, role, traffic share and
memory (``/v1/models``, ``/v1/admin/models``)."""

from __future__ import annotations

from pydantic import BaseModel, Field

from service.registry import LoadedModel, ModelRegistry
from service.versions.routing import Role
from service.versions.state import State


class VersionState(BaseModel):
    name: str
    version: str
    state: State = Field(
        description="loading, self_checking, warming, ready, draining or failed (only ready "
        "versions receive requests)."
    )
    reason: str | None = Field(default=None, description="Why it failed (state failed).")
    role: Role | None = Field(
        default=None,
        description="stable (largest traffic share), canary (other versions with traffic), "
        "shadow (copies only), idle (no traffic); null when failed.",
    )
    traffic_share: float = Field(
        default=0.0, ge=0.0, le=1.0, description="Share of the model's requests it receives."
    )
    memory_mb: float = Field(
        default=0.0, description="Resident memory it added to the process when it loaded."
    )
    bundle: str | None = Field(default=None, description="Its bundle directory.")


def version_state(registry: ModelRegistry, model: LoadedModel) -> VersionState:
    group = registry.groups.get(model.name)
    share = group.table.share(model.version) if group is not None else 0.0
    role = group.role(model.version) if group is not None and model.state != "failed" else None
    return VersionState(
        name=model.name,
        version=model.version,
        state=model.state,
        reason=model.reason,
        role=role,
        traffic_share=round(share, 6),
        memory_mb=round(model.memory_bytes / 2**20, 1),
        bundle=str(model.bundle_dir),
    )


def version_states(registry: ModelRegistry) -> list[VersionState]:
    return [version_state(registry, m) for m in registry.all_versions()]
