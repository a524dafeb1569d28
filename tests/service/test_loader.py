"""The one loader (service.runtime.loader.load_runtime) as the default builds and the batch scorer
call it: from any working directory."""

from __future__ import annotations

from pathlib import Path

import pytest

from service.runtime.loader import load_runtime


def test_load_runtime_works_where_no_default_bundles_dir_exists(
    tiny_bundle: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A fresh clone's default build evaluates its bundle before .cache/bundles exists (CI: the
    intent build died on Settings' bundles_dir check)."""
    monkeypatch.chdir(tmp_path)
    loaded = load_runtime(tiny_bundle)
    assert loaded.manifest.name == "tiny-ner"
    assert loaded.runtime.predict(["ek misal"]).entities is not None
