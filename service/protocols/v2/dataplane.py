"""The one adapter between the protocol layer and the service's data plane.

Everything the v2 REST and gRPC front ends need from the rest of the service (model lookup, the
data plane's ``infer``, the /v1 result builders, so v2 answers equal /v1's) is imported here
and nowhere else in ``service.protocols``: when those move, only this module changes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from service.api.common import infer
from service.api.results import classify_results, entity_results, posture_results
from service.classify.pipeline import ClassPrediction
from service.errors import ModelNotFound
from service.ner.pipeline import NerPrediction
from service.registry import LoadedModel, ModelRegistry
from service.runtime.family import RequestOptions

Kind = Literal["ner", "classifier"]
# The /v1 route (a key of service.registry.ROUTE_TASKS) a bundle task is served by.
ROUTES = {"ner": "ner", "classify": "classify", "postures": "postures"}


@dataclass(frozen=True)
class ModelView:
    """What the protocol layer shows of one loaded bundle."""

    name: str
    version: str
    task: str
    head: str
    labels: list[str]
    max_chars: int | None  # None while the model is not loaded

    @property
    def kind(self) -> Kind:
        return "ner" if self.task == "ner" else "classifier"


@dataclass(frozen=True)
class Answer:
    """One request's results, in /v1's shapes: per text a list of JSON objects (entities, or
    predicted classes), and for classifiers the probabilities [texts, classes] and windows."""

    model: ModelView
    items: list[list[dict[str, Any]]]
    probabilities: np.ndarray | None = None
    windows: list[int] | None = None


def _view(model: LoadedModel) -> ModelView:
    m = model.manifest
    runtime = model.runtime
    return ModelView(
        name=m.name,
        version=m.version,
        task=m.task,
        head=m.head,
        labels=list(m.labels),
        max_chars=runtime.max_chars if runtime is not None else None,
    )


def server_ready(registry: ModelRegistry) -> bool:
    return registry.ready and not registry.draining


def find(registry: ModelRegistry, name: str, version: str | None) -> tuple[ModelView, bool]:
    """The model ``name`` (at ``version``, when given) and whether it is ready; 404 otherwise."""
    model = registry.models.get(name)
    if model is None:
        raise ModelNotFound(
            f"model {name!r} is not served here (served: {sorted(registry.models)})"
        )
    view = _view(model)
    if version and version != view.version:
        raise ModelNotFound(f"model {name!r} has no version {version!r} (served: {view.version})")
    ready = registry.ready and model.runtime is not None and model.batcher is not None
    return view, ready


async def run(
    registry: ModelRegistry, name: str, version: str | None, texts: list[str], top_k: int | None
) -> Answer:
    """One request through the data plane (limits, batcher, metrics), as /v1 runs it."""
    view, _ = find(registry, name, version)
    route = ROUTES[view.task]
    if view.kind == "ner":
        model, ner = await infer(
            registry, route, name, texts, False, RequestOptions(), NerPrediction
        )
        items = [[e.model_dump() for e in r.entities] for r in entity_results(ner)]
        return Answer(_view(model), items)
    model, prediction = await infer(
        registry, route, name, texts, False, RequestOptions(top_k=top_k), ClassPrediction
    )
    labels = model.manifest.labels
    if view.task == "postures":
        items = [
            [p.model_dump() for p in r.postures] for r in posture_results(prediction, labels, False)
        ]
    else:
        items = [
            [c.model_dump() for c in r.labels] for r in classify_results(prediction, labels, False)
        ]
    probabilities = np.asarray(prediction.probabilities, dtype=np.float32)
    return Answer(_view(model), items, probabilities, list(prediction.windows))
