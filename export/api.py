"""The Python API of the export stage: what ``python -m export`` runs, without a command line.

    from export.api import export_bundle, options_for
    bundle = export_bundle("ner", options_for("ner", checkpoint=ckpt, out=out, max_length=128))

``options_for(command, **fields)`` builds the family's typed options (nested ``variant`` as a
:class:`~export.variants.request.VariantRequest` or a dict); ``export_bundle`` runs the driver and
returns the bundle directory, raising :class:`~export.errors.ExportError` when a gate or a check
refuses (nothing is written then). ``calibrate`` is ``python -m export calibrate``.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from export.calibration.command import CalibrateOptions, calibration_settings
from export.errors import ExportError
from export.families import EXPORT_FAMILIES
from export.family import ExportCommand
from service.bundle import BundleError, read_manifest

FAMILIES: dict[str, ExportCommand] = {f.command: f for f in EXPORT_FAMILIES}


def family_of(command: str) -> ExportCommand:
    try:
        return FAMILIES[command]
    except KeyError:
        raise ExportError(f"no export family {command!r}; known: {sorted(FAMILIES)}") from None


def options_for(command: str, **fields: Any) -> BaseModel:
    """The typed options of family ``command`` (unknown or ill-typed fields: ExportError)."""
    try:
        options: BaseModel = family_of(command).options.model_validate(fields)
    except ValidationError as exc:
        raise ExportError(f"{command} options: {exc}") from exc
    return options


def export_bundle(command: str, options: BaseModel | Mapping[str, Any]) -> Path:
    """Export one bundle with family ``command``; return its directory."""
    family = family_of(command)
    if not isinstance(options, family.options):
        fields = options if isinstance(options, Mapping) else options.model_dump()
        options = options_for(command, **fields)
    return family.export(options)


def calibrate(options: CalibrateOptions) -> dict[str, object]:
    """Calibrate a bundle in place (``python -m export calibrate``) with the calibration of the
    export family that writes its task; the report. Bundles of a family without one: ExportError."""
    settings = calibration_settings(options)
    try:
        task = read_manifest(options.bundle).task
    except BundleError as exc:
        raise ExportError(str(exc)) from exc
    family = next((f for f in FAMILIES.values() if f.task() == task), None)
    if family is None or not family.calibrates:
        takes = sorted(f.task() for f in FAMILIES.values() if f.calibrates)
        raise ExportError(
            f"{options.bundle} is a {task} bundle; calibration takes {' or '.join(takes)} bundles"
        )
    return family.calibrate(options, settings)
