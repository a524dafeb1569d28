"""Which loaded model answers a route when the request names none (``ModelRegistry.get``): the
only one the route serves, else the only one whose family's own route it is, else 422."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import pytest

from service.errors import InvalidInput
from service.registry import LoadedModel, ModelRegistry
from service.settings import Settings


def _registry(*models: tuple[str, str], tmp: Path = Path(__file__).parent) -> ModelRegistry:
    registry = ModelRegistry(Settings(bundles_dir=tmp))
    for name, task in models:
        manifest = cast(Any, SimpleNamespace(name=name, task=task, version="1"))
        registry.add(LoadedModel(Path(name), manifest, state="ready"))
    registry.ready = True
    return registry


# The default set: the ensemble serves /v1/postures through also_routes, the posture bundle as
# its own route; every classifier but the posture bundle has /v1/classify as its own route.
DEFAULTS = (
    ("ner-food", "ner"),
    ("postures-legal", "postures"),
    ("intent-food", "classify"),
    ("postures-tfidf", "tfidf"),
    ("postures-ensemble", "ensemble"),
)


def test_postures_without_a_model_is_the_posture_bundle_beside_an_ensemble() -> None:
    assert _registry(*DEFAULTS).get("postures", None).name == "postures-legal"


def test_a_named_ensemble_still_answers_on_postures() -> None:
    assert _registry(*DEFAULTS).get("postures", "postures-ensemble").name == "postures-ensemble"


def test_several_models_of_the_route_itself_still_need_a_name() -> None:
    with pytest.raises(InvalidInput, match=r"several .* models are loaded") as raised:
        _registry(*DEFAULTS).get("classify", None)
    assert "intent-food" in str(raised.value) and "postures-tfidf" in str(raised.value)


def test_a_route_served_only_through_also_routes_by_several_needs_a_name() -> None:
    registry = _registry(("postures-ensemble", "ensemble"), ("other-ensemble", "ensemble"))
    with pytest.raises(InvalidInput, match="several"):
        registry.get("postures", None)


def test_the_only_model_of_a_route_answers_whatever_its_own_route() -> None:
    registry = _registry(("ner-food", "ner"), ("postures-legal", "postures"))
    assert registry.get("classify", None).name == "postures-legal"
