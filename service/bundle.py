"""The bundle: a directory that fully describes one exported model, and its versioned manifest.

``bundle.json`` is written by the export stage and validated here when the service loads it, so a
bundle from an incompatible exporter, or one whose ONNX file was changed, fails loudly at start-up.
The manifest is one of the registered families' manifest classes (``service.families``), chosen by
its ``task``; the sections every family shares and the schema-version rules are in
``service.manifest``.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable
from pathlib import Path, PurePosixPath
from typing import Annotated, Any, Union, cast

from pydantic import Field, TypeAdapter, ValidationError

# Shared sections, re-exported: ``from service.bundle import ManifestBase`` keeps working.
from service.families import SERVING_FAMILIES
from service.manifest import SCHEMA_VERSION as SCHEMA_VERSION
from service.manifest import CalibrationInfo as CalibrationInfo
from service.manifest import ExportInfo as ExportInfo
from service.manifest import ManifestBase as ManifestBase
from service.manifest import OnnxInfo as OnnxInfo
from service.manifest import ParityReport as ParityReport
from service.manifest import SchemaVersion as SchemaVersion
from service.manifest import SelfCheck as SelfCheck
from service.manifest import TokenizerInfo as TokenizerInfo
from service.manifest import VariantInfo as VariantInfo
from service.manifest import schema_version_for as schema_version_for

MANIFEST_FILE = "bundle.json"

# Any family's manifest (the static type; the discriminated union below is built at import).
AnyManifest = ManifestBase


class BundleError(RuntimeError):
    """A bundle directory is missing, malformed or does not match its manifest."""


def manifest_adapter(classes: Iterable[type[ManifestBase]]) -> TypeAdapter[ManifestBase]:
    """A validator of ``bundle.json`` for these manifest classes, discriminated by ``task``."""
    members = tuple(classes)
    union: Any = members[0] if len(members) == 1 else Union.__getitem__(members)
    return cast(
        TypeAdapter[ManifestBase], TypeAdapter(Annotated[union, Field(discriminator="task")])
    )


_manifest_adapter = manifest_adapter(f.manifest for f in SERVING_FAMILIES)


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_manifest(
    bundle_dir: Path, adapter: TypeAdapter[ManifestBase] | None = None
) -> ManifestBase:
    """Parse and validate ``bundle.json`` (no integrity check of the files); ``adapter``: the
    families to accept (default: the registered ones, ``service.families``)."""
    path = bundle_dir / MANIFEST_FILE
    try:
        return (adapter or _manifest_adapter).validate_json(path.read_bytes())
    except FileNotFoundError as exc:
        raise BundleError(f"{bundle_dir}: no {MANIFEST_FILE}; is this an exported bundle?") from exc
    except ValidationError as exc:
        raise BundleError(f"{path}: invalid manifest:\n{exc}") from exc


def bundle_file(bundle_dir: Path, name: str, field: str) -> Path:
    """The file a manifest names in ``field``, inside ``bundle_dir``, or BundleError.

    The rule (docs/reliability.md): a plain relative name (sub-directories allowed), no ``..``
    part, not absolute, and the resolved path (symlinks followed) inside the bundle directory.
    A refused path is named as the manifest spells it; nothing outside the bundle is read.
    """
    pure = PurePosixPath(name)
    if not name or "\\" in name or "\x00" in name:
        problem = "is not a plain relative file name"
    elif pure.is_absolute() or Path(name).is_absolute():
        problem = "is an absolute path"
    elif ".." in pure.parts:
        problem = "has a '..' part"
    else:
        root = bundle_dir.resolve()
        resolved = (root / name).resolve()
        if not resolved.is_relative_to(root) or resolved == root:
            problem = "resolves outside the bundle directory (a symlink)"
        else:
            return bundle_dir / name
    raise BundleError(
        f"{bundle_dir}: {field} {name!r} {problem}; files a manifest names must be plain "
        "relative names inside the bundle directory"
    )


def verify_bundle(
    bundle_dir: Path, adapter: TypeAdapter[ManifestBase] | None = None
) -> ManifestBase:
    """Validate the manifest, check that the files it names are inside the bundle directory and
    exist, and that their sha256 match."""
    manifest = read_manifest(bundle_dir, adapter)
    if not manifest.has_graph:  # no files of its own; its references are checked when loaded
        return manifest
    named = [("onnx.file", manifest.onnx.file), ("tokenizer.file", manifest.tokenizer.file)]
    paths = {field: bundle_file(bundle_dir, name, field) for field, name in named}
    for field, name in named:
        if not paths[field].is_file():
            raise BundleError(f"{bundle_dir}: {name} ({field}) is missing")
    expected = [(paths["onnx.file"], manifest.onnx.sha256)]
    if manifest.tokenizer.sha256 is not None:
        expected.append((paths["tokenizer.file"], manifest.tokenizer.sha256))
    for path, digest in expected:
        actual = sha256_of(path)
        if actual != digest:
            raise BundleError(
                f"{path}: sha256 {actual} does not match the manifest's {digest}; "
                "the file is corrupt, truncated or was replaced"
            )
    return manifest


def write_manifest(manifest: ManifestBase, bundle_dir: Path) -> None:
    """Write atomically (temp file + rename): a reader never sees a half-written manifest."""
    target = bundle_dir / MANIFEST_FILE
    partial = target.with_suffix(".json.partial")
    # Sections a bundle does not have are left out rather than written as null, and so are the
    # family's defaults that older services would not know (``ManifestBase.dump_exclude``).
    exclude: dict[str, Any] = {
        k: True for k in ("variant", "selfcheck") if getattr(manifest, k) is None
    }
    exclude.update(manifest.dump_exclude())
    partial.write_text(manifest.model_dump_json(indent=2, exclude=exclude or None) + "\n")
    os.replace(partial, target)
