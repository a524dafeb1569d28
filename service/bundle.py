"""The bundle: a directory that fully describes one exported model, and its versioned manifest.

``bundle.json`` is written by the export stage and validated here when the service loads it, so a
bundle from an incompatible exporter, or one whose ONNX file was changed, fails loudly at start-up.
The manifest is one of the registered families' manifest classes (``service.families``), chosen by
its ``task``; the sections every family shares and the schema-version rules are in
``service.manifest``.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path, PurePosixPath
from typing import Annotated, Any, Union, cast

from pydantic import Field, TypeAdapter, ValidationError

# Shared sections, re-exported: ``from service.bundle import ManifestBase`` keeps working.
from service.families import SERVING_FAMILIES
from service.manifest import MANIFEST_FILE as MANIFEST_FILE
from service.manifest import SCHEMA_VERSION as SCHEMA_VERSION
from service.manifest import BundleError as BundleError
from service.manifest import BundleManifest as BundleManifest
from service.manifest import CalibrationInfo as CalibrationInfo
from service.manifest import ExportInfo as ExportInfo
from service.manifest import Int8Graph as Int8Graph
from service.manifest import ManifestBase as ManifestBase
from service.manifest import OnnxInfo as OnnxInfo
from service.manifest import ParityReport as ParityReport
from service.manifest import SchemaVersion as SchemaVersion
from service.manifest import SelfCheck as SelfCheck
from service.manifest import TokenizerInfo as TokenizerInfo
from service.manifest import VariantInfo as VariantInfo
from service.manifest import schema_version_for as schema_version_for
from service.manifest import sha256_of as sha256_of

# Any family's manifest (the static type; the discriminated union below is built at import).
AnyManifest = ManifestBase


def manifest_adapter(classes: Iterable[type[BundleManifest]]) -> TypeAdapter[BundleManifest]:
    """A validator of ``bundle.json`` for these manifest classes, discriminated by ``task``."""
    members = tuple(classes)
    union: Any = members[0] if len(members) == 1 else Union.__getitem__(members)
    return cast(
        TypeAdapter[BundleManifest], TypeAdapter(Annotated[union, Field(discriminator="task")])
    )


_manifest_adapter = manifest_adapter(f.manifest for f in SERVING_FAMILIES)


def read_manifest(
    bundle_dir: Path, adapter: TypeAdapter[BundleManifest] | None = None
) -> BundleManifest:
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
    bundle_dir: Path, adapter: TypeAdapter[BundleManifest] | None = None
) -> BundleManifest:
    """Validate the manifest, check that every file it names (``bundle_files()``: the ONNX graph
    and tokenizer, a TF-IDF bundle's data files; none for a bundle that runs other models) is
    inside the bundle directory and exists, and that their sha256 match."""
    manifest = read_manifest(bundle_dir, adapter)
    files = manifest.bundle_files()
    paths = [bundle_file(bundle_dir, name, field) for field, name, _ in files]
    for path, (field, name, _) in zip(paths, files, strict=True):
        if not path.is_file():
            raise BundleError(f"{bundle_dir}: {name} ({field}) is missing")
    for path, (_, _, digest) in zip(paths, files, strict=True):
        if digest is None:
            continue
        actual = sha256_of(path)
        if actual != digest:
            raise BundleError(
                f"{path}: sha256 {actual} does not match the manifest's {digest}; "
                "the file is corrupt, truncated or was replaced"
            )
    return manifest


def read_onnx_manifest(bundle_dir: Path) -> ManifestBase:
    """``read_manifest`` for the steps that handle ONNX graphs (variants, INT8 gates)."""
    manifest = read_manifest(bundle_dir)
    if not isinstance(manifest, ManifestBase) or not manifest.has_graph:
        raise BundleError(f"{bundle_dir}: a {manifest.task} bundle holds no ONNX graph")
    return manifest


def write_manifest(manifest: BundleManifest, bundle_dir: Path) -> None:
    """Write atomically (temp file + rename): a reader never sees a half-written manifest."""
    target = bundle_dir / MANIFEST_FILE
    partial = target.with_suffix(".json.partial")
    # Sections a bundle does not have are left out rather than written as null, and so are the
    # family's defaults that older services would not know (``ManifestBase.dump_exclude``).
    exclude: dict[str, Any] = {
        k: True
        for k in ("variant", "selfcheck")
        if k in type(manifest).model_fields and getattr(manifest, k) is None
    }
    if getattr(manifest, "int8_graphs", None) == []:  # one graph: as bundles before schema 6
        exclude["int8_graphs"] = True
    variant = getattr(manifest, "variant", None)
    if variant is not None and not variant.int8_formats_refused:
        exclude["variant"] = {"int8_formats_refused"}
    exclude.update(manifest.dump_exclude())
    partial.write_text(manifest.model_dump_json(indent=2, exclude=exclude or None) + "\n")
    os.replace(partial, target)
