"""The registered model families, serving side: one line per family.

From this tuple are built the manifest union (``service.bundle``), the runtime and route tables
(``service.registry``) and the batch scorer's record types (``service.batch.models``). A new family
is a package ``families/<name>/`` whose ``serving.py`` exposes ``FAMILY``, plus one line here
(docs/adding-a-family.md). Order matters only for messages (the union's tag list, route names).
"""

from __future__ import annotations

from collections.abc import Iterable

from families.classify import serving as classify
from families.ensemble import serving as ensemble
from families.joint import serving as joint
from families.ner import serving as ner
from families.postures import serving as postures
from families.span import serving as span
from families.tfidf import serving as tfidf
from service.runtime.family import ComposedFactory, RuntimeFactory, ServingFamily

SERVING_FAMILIES: tuple[ServingFamily, ...] = (
    ner.FAMILY,
    postures.FAMILY,
    classify.FAMILY,
    span.FAMILY,
    ensemble.FAMILY,
    joint.FAMILY,
    tfidf.FAMILY,
)


def runtime_table(families: Iterable[ServingFamily]) -> dict[tuple[str, str], RuntimeFactory]:
    """(task, head) of a bundle -> the runtime factory that serves it."""
    return {(f.task, head): make for f in families for head, make in f.runtimes.items()}


def composed_table(
    families: Iterable[ServingFamily],
) -> dict[tuple[str, str], ComposedFactory]:
    """(task, head) of a bundle without a graph of its own -> the factory that composes it."""
    return {(f.task, head): make for f in families for head, make in f.composed.items()}


def route_table(families: Iterable[ServingFamily]) -> dict[str, tuple[str, ...]]:
    """Model route -> the bundle tasks it serves: the families whose own route it is, then those
    it serves too (``also_routes``)."""
    families = tuple(families)
    routes: dict[str, tuple[str, ...]] = {}
    for f in families:
        routes[f.route] = (*routes.get(f.route, ()), f.task)
    for f in families:
        for route in f.also_routes:
            routes[route] = (*routes.get(route, ()), f.task)
    return routes


def family_table(families: Iterable[ServingFamily]) -> dict[str, ServingFamily]:
    """task -> family; two families may not claim the same task."""
    table: dict[str, ServingFamily] = {}
    for f in families:
        if f.task in table:
            raise ValueError(f"two serving families claim task {f.task!r}")
        table[f.task] = f
    return table
