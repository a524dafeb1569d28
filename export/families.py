"""The export families, one line each: ``python -m export <command>`` and
``export.api.export_bundle(<command>, options)`` are built from this tuple."""

from __future__ import annotations

from typing import Any

from export.family import BundleCommand, ExportFamily
from families.classify import export as classify
from families.ensemble import export as ensemble
from families.joint import export as joint
from families.ner import export as ner
from families.postures import export as postures
from families.span import export as span

EXPORT_FAMILIES: tuple[ExportFamily[Any, Any] | BundleCommand[Any], ...] = (
    ner.FAMILY,
    classify.FAMILY,
    postures.FAMILY,
    span.FAMILY,
    ensemble.FAMILY,
    joint.FAMILY,
)
