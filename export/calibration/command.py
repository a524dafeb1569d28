"""``python -m export calibrate``: its typed options and the settings they give.

The run belongs to the bundle's export family (:meth:`export.family.ExportFamily.calibrate`,
picked by the bundle's task in :func:`export.api.calibrate`): the classifier families tune
thresholds or the abstain cut (:mod:`families.classify.calibrate`), the span family its per-type
cuts (:mod:`families.span.calibrate`), the joint family each sequence head's
(:mod:`families.joint.calibrate`).
"""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from export.calibration.automation import (
    DEFAULT_AUTOMATION_F1,
    DEFAULT_TARGET_PRECISION,
    AutomationSettings,
)
from export.calibration.options import Settings
from export.errors import ExportError

DESCRIPTION = (
    "Multi-label (posture or classify) bundles: cross-validate 0.5 / one global / per-class / "
    "per-class shrunk thresholds inside a validation split; the bundle ships the option with the "
    "best out-of-fold micro-F1 (ties go to the simpler). Writes a JSON + Markdown + PNG report. "
    "Single-label bundles: the abstain threshold, the lowest cut on the top probability whose "
    "precision among answered texts reaches --target-precision (out-of-fold precision and "
    "coverage in the JSON report)."
)


class CalibrateOptions(BaseModel):
    """``python -m export calibrate`` / ``export.api.calibrate(CalibrateOptions(...))``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    bundle: Path = Field(description="classifier bundle directory")
    data: Path = Field(
        description='validation split, JSON lines {"text": ..., "labels": [...]} (single-label: '
        "one label, or [] for none of the model's classes)"
    )
    target_precision: float = Field(
        0.9,
        description="single-label: precision among answered texts the abstain threshold must reach",
    )
    min_support: int = Field(
        Settings.min_support,
        description="classes with fewer positives use the global threshold",
    )
    folds: int = Field(Settings.folds, description="cross-validation folds")
    seed: int = Field(Settings.seed, description="folds and bootstrap seed")
    bootstrap: int = Field(Settings.draws, description="bootstrap resamplings")
    shrinkage: float = Field(
        Settings.shrinkage,
        description="positives at which a class's own cut and the global one weigh the same in "
        "the shrunk option",
    )
    automation_f1: float = Field(
        DEFAULT_AUTOMATION_F1,
        description="multi-label: a class is automated when its out-of-fold F1 interval "
        "low end reaches this (0.63: the human agreement level)",
    )
    review_precision: float = Field(
        DEFAULT_TARGET_PRECISION,
        description="multi-label: precision the automatically issued labels must reach on "
        "validation; probabilities in the band below it go to a person",
    )
    review_miss_rate: float | None = Field(
        None,
        description="multi-label: most positives among the absences issued automatically on "
        "validation (false omission rate); probabilities in the band above it, below the "
        "threshold, go to a person (default: 1 - --review-precision)",
    )
    no_automation: bool = Field(
        False,
        description="skip per-class automation (the bundle stays readable by schema-4 services)",
    )
    report: Path | None = Field(
        None,
        description="where to save the JSON report; the .md and the PNGs go beside it "
        "(default: BUNDLE/calibration_report.json)",
    )
    no_plots: bool = Field(False, description="skip the PNG pictures")


def calibration_settings(options: CalibrateOptions) -> Settings:
    """Check the options every family's calibration shares; the estimation settings."""
    if not options.data.is_file():
        raise ExportError(f"{options.data}: no such file")
    if not 0 < options.target_precision <= 1:
        raise ExportError(f"--target-precision {options.target_precision} must be in (0, 1]")
    for flag, value in (
        ("--automation-f1", options.automation_f1),
        ("--review-precision", options.review_precision),
        ("--review-miss-rate", options.review_miss_rate),
    ):
        if value is None:
            continue
        if not 0 <= value <= 1:
            raise ExportError(f"{flag} {value} must be in [0, 1]")
    try:
        return Settings(
            folds=options.folds,
            seed=options.seed,
            draws=options.bootstrap,
            min_support=options.min_support,
            shrinkage=options.shrinkage,
        )
    except ValueError as exc:
        raise ExportError(str(exc)) from exc


def automation_settings(options: CalibrateOptions) -> AutomationSettings | None:
    """Per-class automation and review band settings (None: ``--no-automation``)."""
    if options.no_automation:
        return None
    return AutomationSettings(
        target_f1=options.automation_f1,
        target_precision=options.review_precision,
        target_miss_rate=options.review_miss_rate,
        folds=options.folds,
        seed=options.seed,
        draws=options.bootstrap,
    )
