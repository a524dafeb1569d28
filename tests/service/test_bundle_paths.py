"""Files a manifest names come only from the bundle directory; INFER_MODELS picks which bundles
are opened (issue 21)."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest

from service.bundle import BundleError, verify_bundle
from service.registry import ModelRegistry
from service.settings import Settings


def copy_bundle(tiny_bundle: Path, target: Path, **changes: str) -> Path:
    shutil.copytree(tiny_bundle, target)
    manifest = json.loads((target / "bundle.json").read_text())
    for key, value in changes.items():
        section, field = key.split("__")
        manifest[section][field] = value
    (target / "bundle.json").write_text(json.dumps(manifest))
    return target


@pytest.mark.parametrize(
    ("changes", "named", "problem"),
    [
        ({"onnx__file": "../outside/model.onnx"}, "../outside/model.onnx", "'..' part"),
        ({"onnx__file": "ABSOLUTE"}, "ABSOLUTE", "absolute path"),
        ({"tokenizer__file": "/etc/passwd"}, "/etc/passwd", "absolute path"),
        ({"tokenizer__file": "a\\..\\b.json"}, "a\\\\..\\\\b.json", "plain relative"),
    ],
)
def test_paths_outside_the_bundle_are_refused_with_the_path_named(
    tiny_bundle: Path, tmp_path: Path, changes: dict[str, str], named: str, problem: str
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    shutil.copy(tiny_bundle / "model.onnx", outside / "model.onnx")  # the matching hash
    changes = {k: v.replace("ABSOLUTE", str(outside / "model.onnx")) for k, v in changes.items()}
    named = named.replace("ABSOLUTE", str(outside / "model.onnx"))
    bundle = copy_bundle(tiny_bundle, tmp_path / "bundles" / "b", **changes)
    with pytest.raises(BundleError) as refused:
        verify_bundle(bundle)
    message = str(refused.value)
    assert named in message and problem in message
    assert hashlib.sha256(Path("/etc/passwd").read_bytes()).hexdigest() not in message


def test_a_symlink_out_of_the_bundle_is_refused_and_one_inside_is_fine(
    tiny_bundle: Path, tmp_path: Path
) -> None:
    bundle = copy_bundle(tiny_bundle, tmp_path / "b")
    outside = tmp_path / "model.onnx"
    (bundle / "model.onnx").rename(outside)
    (bundle / "model.onnx").symlink_to(outside)
    with pytest.raises(BundleError, match=r"'model\.onnx' resolves outside the bundle"):
        verify_bundle(bundle)
    (bundle / "model.onnx").unlink()
    (bundle / "graphs").mkdir()
    outside.rename(bundle / "graphs" / "real.onnx")
    (bundle / "model.onnx").symlink_to(bundle / "graphs" / "real.onnx")
    assert verify_bundle(bundle).name == json.loads((bundle / "bundle.json").read_text())["name"]


def test_infer_models_leaves_a_broken_bundle_unopened(tiny_bundle: Path, tmp_path: Path) -> None:
    bundles = tmp_path / "bundles"
    copy_bundle(tiny_bundle, bundles / "good")
    (bundles / "broken").mkdir()
    (bundles / "broken" / "bundle.json").write_text("{not json")
    name = json.loads((tiny_bundle / "bundle.json").read_text())["name"]
    registry = ModelRegistry(Settings(bundles_dir=bundles, models=[name]))
    registry.discover()
    assert list(registry.models) == [name]
    with pytest.raises(BundleError, match="broken"):
        ModelRegistry(Settings(bundles_dir=bundles)).discover()  # not selected away: refused
    with pytest.raises(BundleError, match="broken"):  # selected by its directory name
        ModelRegistry(Settings(bundles_dir=bundles, models=["broken"])).discover()
