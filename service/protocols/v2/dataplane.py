"""The one adapter between the protocol layer and the service's data plane.

Everything the v2 REST and gRPC front ends need from the rest of the service (model lookup, the
data plane's ``infer``, the /v1 result builders, so v2 answers equal /v1's) is imported here
and nowhere else in ``service.protocols``: when those move, only this module changes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from service.dataplane import infer
from service.errors import ModelNotFound
from service.registry import LoadedModel, ModelRegistry
from service.runtime.family import RequestOptions

Kind = Literal["ner", "classifier"]


@dataclass(frozen=True)
class ModelView:
    """What the protocol layer shows of one loaded bundle."""

    name: str
    version: str
    task: str
    head: str
    labels: list[str]
    max_chars: int | None  # None while the model is not loaded
    items: str  # what the family's /v1 result holds per text: "entities", or its classes

    @property
    def kind(self) -> Kind:
        # entities (NER, span and joint bundles: a joint bundle answers its token head here and
        # its sequence heads on /v1/parse or /v1/classify), else classes with probabilities
        return "ner" if self.items == "entities" else "classifier"


@dataclass(frozen=True)
class Answer:
    """One request's results, in /v1's shapes: per text a list of JSON objects (entities, or
    predicted classes), and for classifiers the probabilities [texts, classes] and windows."""

    model: ModelView
    items: list[list[dict[str, Any]]]
    probabilities: np.ndarray | None = None
    windows: list[int] | None = None


def _view(registry: ModelRegistry, model: LoadedModel) -> ModelView:
    m = model.manifest
    runtime = model.runtime
    return ModelView(
        name=m.name,
        version=m.version,
        task=m.task,
        head=m.head,
        labels=list(m.labels),
        max_chars=runtime.max_chars if runtime is not None else None,
        items=registry.by_task[m.task].batch.items_key,
    )


def server_ready(registry: ModelRegistry) -> bool:
    return registry.ready and not registry.draining


def find(registry: ModelRegistry, name: str, version: str | None) -> tuple[ModelView, bool]:
    """The model ``name`` (at ``version``, when given: one of its loaded versions; else its
    primary version) and whether it is ready; 404 otherwise."""
    group = registry.groups.get(name)
    model = group.primary() if group is not None else None
    if group is None or model is None:
        raise ModelNotFound(
            f"model {name!r} is not served here (served: {sorted(registry.groups)})"
        )
    if version:
        pinned = group.versions.get(version)
        if pinned is None or pinned.state == "failed":
            served = [m.version for m in group.sorted_versions() if m.state != "failed"]
            raise ModelNotFound(f"model {name!r} has no version {version!r} (served: {served})")
        model = pinned
    view = _view(registry, model)
    ready = (
        registry.ready
        and model.state == "ready"
        and model.runtime is not None
        and model.batcher is not None
    )
    return view, ready


async def run(
    registry: ModelRegistry, name: str, version: str | None, texts: list[str], top_k: int | None
) -> Answer:
    """One request through the data plane (limits, batcher, metrics), as /v1 runs it."""
    view, _ = find(registry, name, version)
    family = registry.by_task[view.task]
    options = RequestOptions(top_k=top_k)
    # Any family's prediction: its own records turn it into /v1's result objects.
    answers: type[Any] = object
    ref = f"{name}@{version}" if version else name  # a version in the path pins it
    model, prediction = await infer(registry, family.route, ref, texts, False, options, answers)
    labels = model.manifest.labels
    results = family.batch.results(prediction, labels, False)
    items = [list(r[family.batch.items_key]) for r in results]
    probabilities = getattr(prediction, "probabilities", None)
    if probabilities is None:
        return Answer(_view(registry, model), items)
    probs = np.asarray(probabilities, dtype=np.float32)
    return Answer(_view(registry, model), items, probs, list(prediction.windows))
