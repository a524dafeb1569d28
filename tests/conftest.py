"""Shared fixtures: a tiny random BERT-CRF (both checkpoint forms), its bundle, the default."""

from __future__ import annotations

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
    from export.ner.exporter import NerExportOptions, export_ner

    out = tmp_path_factory.mktemp("bundles") / "tiny-ner"
    export_ner(
        NerExportOptions(checkpoint=tiny_checkpoint / "dir", out=out, max_length=16, stride=4)
    )
    return out


@pytest.fixture(scope="session")
def default_bundles_dir() -> Path:
    """The built-in default bundle, built once and cached under .cache like `make run` does."""
    from default_models.build import build_ner

    bundle = build_ner(ROOT / ".cache")
    return bundle.parent
