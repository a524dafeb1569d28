"""The export families, one line each: ``python -m export <command>`` and
``export.api.export_bundle(<command>, options)`` are built from this tuple."""

from __future__ import annotations

from export.family import ExportCommand
from families.classify import export as classify
from families.ensemble import export as ensemble
from families.joint import export as joint
from families.ner import export as ner
from families.postures import export as postures
from families.span import export as span
from families.tfidf import export as tfidf

EXPORT_FAMILIES: tuple[ExportCommand, ...] = (
    ner.FAMILY,
    classify.FAMILY,
    postures.FAMILY,
    span.FAMILY,
    ensemble.FAMILY,
    joint.FAMILY,
    tfidf.FAMILY,
)
