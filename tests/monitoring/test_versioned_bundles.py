"""The proof's several-versions bundles directory (monitoring/versioned_bundles.py): a clone is a
valid bundle of its own version (the sha256 covers the files, not the manifest), files are shared
rather than copied, a corrupt clone is refused by the service's own verification, and a published
version appears complete in one rename."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from monitoring.versioned_bundles import clone_bundle, publish_version, versioned_bundles
from service.bundle import BundleError
from service.runtime.loader import Families


def fake_bundles(root: Path) -> Path:
    for name in ("ner-food", "postures-legal"):
        (root / name).mkdir(parents=True)
        (root / name / "model.onnx").write_bytes(b"graph of " + name.encode())
        manifest = {"name": name, "version": "1", "onnx": {"file": "model.onnx", "sha256": "ab"}}
        (root / name / "bundle.json").write_text(json.dumps(manifest))
    return root


def manifest(directory: Path) -> dict[str, object]:
    loaded: dict[str, object] = json.loads((directory / "bundle.json").read_text())
    return loaded


def test_versioned_layout_renames_only_the_manifest_version(tmp_path: Path) -> None:
    source = fake_bundles(tmp_path / "src")
    root = versioned_bundles(source, tmp_path / "out", "ner-food", ("1", "2", "3"))
    assert sorted(p.name for p in (root / "ner-food").iterdir()) == ["1", "2", "3"]
    for version in ("1", "2", "3"):
        copy = root / "ner-food" / version
        assert manifest(copy)["version"] == version
        assert manifest(copy)["onnx"] == manifest(source / "ner-food")["onnx"]
        # hard links on one filesystem: three versions cost no extra disk
        assert (copy / "model.onnx").stat().st_ino == (source / "ner-food/model.onnx").stat().st_ino
    # untouched manifests stay byte-identical (an ensemble pins its members' bundle.json sha256)
    for same in (root / "postures-legal", root / "ner-food" / "1"):
        original = source / same.relative_to(root).parts[0] / "bundle.json"
        assert (same / "bundle.json").read_bytes() == original.read_bytes()
    with pytest.raises(FileNotFoundError):
        versioned_bundles(source, tmp_path / "other", "no-such-model", ("1",))


def test_publish_is_complete_when_visible_and_never_overwrites(tmp_path: Path) -> None:
    source = fake_bundles(tmp_path / "src")
    root = versioned_bundles(source, tmp_path / "out", "ner-food", ("1",))
    final = publish_version(source / "ner-food", root, "ner-food", "4", corrupt_sha256=True)
    assert final == root / "ner-food" / "4"
    assert manifest(final)["version"] == "4"
    assert manifest(final)["onnx"]["sha256"] == "0" * 64  # type: ignore[index]
    assert not list(root.glob(".*")), "the staging directory was renamed, not left behind"
    with pytest.raises(FileExistsError):
        publish_version(source / "ner-food", root, "ner-food", "4")


def test_a_clone_of_a_real_bundle_verifies_and_a_corrupt_one_is_refused(
    default_bundles_dir: Path, tmp_path: Path
) -> None:
    families = Families()
    clone_bundle(default_bundles_dir / "ner-food", tmp_path / "2", "2")
    verified = families.verify(tmp_path / "2")
    assert (verified.name, verified.version) == ("ner-food", "2")
    clone_bundle(default_bundles_dir / "ner-food", tmp_path / "4", "4", corrupt_sha256=True)
    with pytest.raises(BundleError, match="sha256"):
        families.verify(tmp_path / "4")


def test_the_proofs_version_settings_are_what_the_service_reads(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A misspelt INFER_ key would be ignored and the proof would serve no canary or shadow."""
    from monitoring.proof import REFUSED_VERSION, VERSIONED, VERSIONS_ENV
    from service.settings import Settings

    known = {f"INFER_{name.upper()}" for name in Settings.model_fields}
    assert set(VERSIONS_ENV) <= known
    for key, value in VERSIONS_ENV.items():
        monkeypatch.setenv(key, value)
    settings = Settings()
    policy = settings.routing[VERSIONED]
    assert policy.weights == {"1": 90, "2": 10}
    assert policy.shadow is not None and policy.shadow.version == "3"
    assert settings.watch is True
    assert REFUSED_VERSION not in {"1", "2", "3"}
