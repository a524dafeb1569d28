"""Traffic policy of one model name: weights per version, sticky callers, shadow traffic.

A policy is applied to the versions that are ready. Without weights (or when none of the
weighted versions is ready) all traffic goes to the highest ready version (``state.version_key``).
A request picks its version once, at admission: a point in [0, 1) — random, or, with a sticky
header present, derived from the header's value by SHA-256 — falls in one version's slice of the
cumulative weights (versions in ascending order). The same caller therefore gets the same version
as long as the weights and the ready versions do not change.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from service.versions.state import highest, version_key

Role = Literal["stable", "canary", "shadow", "idle"]


class ShadowPolicy(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: str = Field(description="The version that also receives a copy of the requests.")
    fraction: float = Field(
        default=1.0, ge=0.0, le=1.0, description="Share of served requests copied to it."
    )


class RoutingPolicy(BaseModel):
    """One model's traffic policy (``INFER_ROUTING`` values, ``PUT .../routing`` bodies)."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "weights": {"1": 90, "2": 10},
                    "sticky_header": "x-caller-id",
                    "shadow": {"version": "3", "fraction": 0.1},
                }
            ]
        },
    )

    weights: dict[str, float] | None = Field(
        default=None,
        description="Relative weight per version (>= 0, sum > 0); absent: all traffic to the "
        "highest ready version.",
    )
    sticky_header: str | None = Field(
        default=None,
        min_length=1,
        description="Request header whose value keeps a caller on one version (same value, "
        "same version while the weights are unchanged).",
    )
    shadow: ShadowPolicy | None = Field(
        default=None, description="A version that receives a copy of a fraction of requests."
    )


def sticky_point(value: str) -> float:
    """A stable point in [0, 1) for a caller's header value."""
    digest = hashlib.sha256(value.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


@dataclass(frozen=True)
class Table:
    """The effective routing of one model at one moment (immutable: swapped whole)."""

    versions: tuple[str, ...]  # ascending
    cumulative: tuple[float, ...]  # upper bound of each version's slice, last == 1.0
    sticky_header: str | None
    shadow: ShadowPolicy | None

    def pick(self, caller: str | None, rng: random.Random | None = None) -> str | None:
        if not self.versions:
            return None
        point = sticky_point(caller) if caller is not None else (rng or random).random()
        for version, bound in zip(self.versions, self.cumulative, strict=True):
            if point < bound:
                return version
        return self.versions[-1]

    def share(self, version: str) -> float:
        previous = 0.0
        for v, bound in zip(self.versions, self.cumulative, strict=True):
            if v == version:
                return bound - previous
            previous = bound
        return 0.0


def build_table(policy: RoutingPolicy, ready: list[str]) -> Table:
    """The table for ``policy`` over the ``ready`` versions."""
    weights = {v: w for v, w in (policy.weights or {}).items() if v in ready and w > 0}
    if not weights and ready:
        weights = {highest(ready): 1.0}
    ordered = sorted(weights, key=version_key)
    total = sum(weights.values())
    cumulative: list[float] = []
    running = 0.0
    for v in ordered:
        running += weights[v]
        cumulative.append(running / total)
    if cumulative:
        cumulative[-1] = 1.0
    shadow = policy.shadow if policy.shadow and policy.shadow.version in ready else None
    return Table(tuple(ordered), tuple(cumulative), policy.sticky_header, shadow)


def roles(table: Table, loaded: list[str]) -> dict[str, Role]:
    """stable: the largest share (ties: the highest version); canary: any other version with
    traffic; shadow: the shadow target (without traffic of its own); idle: the rest."""
    shares = {v: table.share(v) for v in table.versions}
    stable = max(shares, key=lambda v: (shares[v], version_key(v))) if shares else None
    out: dict[str, Role] = {}
    for v in loaded:
        if v == stable:
            out[v] = "stable"
        elif shares.get(v, 0.0) > 0:
            out[v] = "canary"
        elif table.shadow is not None and table.shadow.version == v:
            out[v] = "shadow"
        else:
            out[v] = "idle"
    return out


def validate(policy: RoutingPolicy, loaded: list[str]) -> list[tuple[str, str]]:
    """(field, message) for each way ``policy`` does not fit the ``loaded`` versions."""
    problems: list[tuple[str, str]] = []
    if policy.weights is not None:
        for v, w in policy.weights.items():
            if v not in loaded:
                problems.append((f"weights.{v}", f"version {v!r} is not loaded ({loaded})"))
            if w < 0:
                problems.append((f"weights.{v}", f"weight {w} is negative"))
        if sum(w for w in policy.weights.values() if w > 0) <= 0:
            problems.append(("weights", "the weights must sum to more than 0"))
    if policy.shadow is not None and policy.shadow.version not in loaded:
        problems.append(
            ("shadow.version", f"version {policy.shadow.version!r} is not loaded ({loaded})")
        )
    return problems
