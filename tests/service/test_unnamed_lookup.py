"""Which loaded model a request naming none gets: a family that yields on its ``also_routes``
is taken there only when nothing else serves the route, so loading one never makes an unnamed
call ambiguous; the route's own families keep the old rule (one candidate, else a 422)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import pytest

from service.errors import InvalidInput
from service.registry import LoadedModel, ModelRegistry
from service.settings import Settings
from tests import fake_family

OWN = replace(fake_family.FAMILY, task="own", route="classify", also_routes=())
SIDE = replace(fake_family.FAMILY, task="side", route="side", yields_on_also_routes=True)
PLAIN = replace(fake_family.FAMILY, task="plain", route="plain")  # also_routes classify


def registry(tmp_path: Path, *loaded: tuple[str, str]) -> ModelRegistry:
    reg = ModelRegistry(Settings(bundles_dir=tmp_path), (OWN, SIDE, PLAIN))
    for name, task in loaded:
        manifest = SimpleNamespace(name=name, task=task, version="1")
        reg.add(LoadedModel(tmp_path / name, manifest, state="ready"))  # type: ignore[arg-type]
    reg.ready = True
    return reg


def test_a_yielding_bundle_is_taken_unnamed_only_when_alone(tmp_path: Path) -> None:
    both = registry(tmp_path, ("a", "own"), ("s", "side"))
    assert both.get("classify", None).name == "a"
    assert both.get("classify", "s").name == "s"  # named, it answers
    assert both.get("side", None).name == "s"  # its own route: the usual rule
    alone = registry(tmp_path, ("s", "side"))
    assert alone.get("classify", None).name == "s"


def test_the_own_route_bundle_answers_and_side_bundles_stay_ambiguous(tmp_path: Path) -> None:
    reg = registry(tmp_path, ("a", "own"), ("p", "plain"), ("s", "side"))
    # the default per route: the only bundle whose family's own route it is answers
    assert reg.get("classify", None).name == "a"
    two_sides = registry(tmp_path, ("s", "side"), ("t", "side"))
    with pytest.raises(InvalidInput, match=r"\['s', 't'\]"):
        two_sides.get("classify", None)
