"""Shared fixtures: a tiny random BERT-CRF (both checkpoint forms), its bundle, the default."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.helpers import build_tiny_checkpoint

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``dir/`` is checkpoint form (a); ``model.pt`` + ``base/`` + ``labels.txt`` are form (b)."""
    return build_tiny_checkpoint(tmp_path_factory.mktemp("tiny"))


@pytest.fixture(scope="session")
def tiny_bundle(tiny_checkpoint: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from export.cli import main

    out = tmp_path_factory.mktemp("bundles") / "tiny-ner"
    args = ["--checkpoint", str(tiny_checkpoint / "dir"), "--out", str(out)]
    assert main(["ner", *args, "--max-length", "16", "--stride", "4"]) == 0
    return out


@pytest.fixture(scope="session")
def default_bundles_dir() -> Path:
    """The built-in default bundles (NER, postures, intents), built once and cached under .cache
    the way `make run` does (two build processes side by side)."""
    from default_models.jobs import MODELS, BuildRequest, build

    # not the joint default (nlu-food): its own tests use tiny joint models, and building it
    # here would add minutes to every test session that needs the defaults
    models = tuple(m for m in MODELS if m != "joint")
    build(BuildRequest(models=models, root=ROOT / ".cache"))
    return ROOT / ".cache" / "bundles"


@pytest.fixture(scope="session")
def default_bundles_with_joint(default_bundles_dir: Path) -> Path:
    """The default bundles and the joint default (``nlu-food``, ~2-4 min to build once): for the
    tests that need every default model (the served OpenAPI document's rules)."""
    from default_models.jobs import BuildRequest, build

    build(BuildRequest(models=("joint",), root=ROOT / ".cache"))
    return default_bundles_dir


@pytest.fixture(scope="session")
def tiny_longformer(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from default_models.random_checkpoint import write_random_longformer

    return write_random_longformer(tmp_path_factory.mktemp("tiny-longformer"), "tiny")


@pytest.fixture(scope="session")
def tiny_posture_bundle(tiny_longformer: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Windows of 600 tokens: long enough for the 511/512/513 edges, short enough for CI."""
    from export.cli import main

    out = tmp_path_factory.mktemp("posture-bundles") / "tiny-postures"
    args = ["--checkpoint", str(tiny_longformer / "dir"), "--out", str(out)]
    assert main(["postures", *args, "--max-length", "600"]) == 0
    return out


@pytest.fixture(scope="session")
def classifier_bundles(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Path]:
    """Exports a case of ``tests.classify_families`` on first use (by id) into one bundles dir,
    whose parent holds each case's checkpoints (``<root>/<case id>/dir`` ...)."""
    from tests.classify_families import CASES, export_case

    root = tmp_path_factory.mktemp("classifiers")
    cases = {case.id: case for case in CASES}
    done: dict[str, Path] = {}

    def bundle(case_id: str) -> Path:
        if case_id not in done:
            done[case_id] = export_case(cases[case_id], root / case_id, root / "bundles")
        return done[case_id]

    return bundle
