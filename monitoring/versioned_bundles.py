"""A bundles directory with several versions of one model, for the live proof (and anyone who wants
to try canary and shadow routing on the default bundles without an export).

The sha256 in a manifest covers the ONNX graph and the tokenizer, not the manifest itself, so a
copy of a bundle with only its manifest's ``version`` changed is a valid second version. Files are
hard-linked when source and destination share a filesystem (no 70 MB copies), copied otherwise.

Layout (docs/deployment/model-versions.md): ``<root>/<name>/<version>/bundle.json`` for the model
with several versions, ``<root>/<other>/bundle.json`` for every other bundle. A new version is
published like an export does: written under a hidden staging name in the same directory tree,
then renamed into place in one step, so a watching service never sees half a version.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterable
from pathlib import Path

MANIFEST = "bundle.json"


def _link_or_copy(source: str | Path, target: str | Path) -> None:
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


def clone_bundle(
    source: Path, target: Path, version: str | None = None, corrupt_sha256: bool = False
) -> None:
    """``source``'s files into the new directory ``target``; the manifest rewritten with
    ``version`` (when it differs) and, with ``corrupt_sha256``, a wrong ONNX sha256 (a version
    that must be refused at load); otherwise linked unchanged."""
    target.mkdir(parents=True)
    manifest = json.loads((source / MANIFEST).read_text())
    # Unchanged manifests stay byte-identical: an ensemble pins its members' bundle.json sha256.
    rewrite = corrupt_sha256 or (version is not None and manifest["version"] != version)
    for entry in source.iterdir():
        if entry.name == MANIFEST and rewrite:
            continue
        if entry.is_dir():
            shutil.copytree(entry, target / entry.name, copy_function=_link_or_copy)
        else:
            _link_or_copy(entry, target / entry.name)
    if not rewrite:
        return
    if version is not None:
        manifest["version"] = version
    if corrupt_sha256:
        manifest["onnx"]["sha256"] = "0" * 64
    (target / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")


def versioned_bundles(source: Path, root: Path, model: str, versions: Iterable[str]) -> Path:
    """``root`` holding every bundle of ``source``, with ``model`` as ``root/model/<v>`` for each
    of ``versions`` (identical weights, different manifest versions). Returns ``root``."""
    versions = list(versions)
    if not (source / model / MANIFEST).exists():
        raise FileNotFoundError(f"{source / model} holds no {MANIFEST}")
    root.mkdir(parents=True, exist_ok=True)
    for bundle in sorted(p.parent for p in source.glob(f"*/{MANIFEST}")):
        if bundle.name == model:
            for version in versions:
                clone_bundle(bundle, root / model / version, version)
        else:
            clone_bundle(bundle, root / bundle.name)
    return root


def publish_version(
    source: Path, root: Path, model: str, version: str, corrupt_sha256: bool = False
) -> Path:
    """Write ``source`` as ``root/model/version`` the way a watching service expects: complete
    under a hidden staging name first (skipped by the watch), then renamed into place."""
    staging = root / f".{model}.{version}.partial"
    final = root / model / version
    if final.exists():
        raise FileExistsError(f"{final} already exists: publish a new version instead")
    clone_bundle(source, staging, version, corrupt_sha256)
    final.parent.mkdir(parents=True, exist_ok=True)
    staging.rename(final)
    return final
