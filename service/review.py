"""Per-class automation and review routing, for every classifier (family-independent).

A bundle's calibration may carry, per class, its validated quality and an ``automate`` flag
(:class:`ClassAutomation`, computed by ``export.calibration.automation``). At serving time
:func:`review` says, per document, whether a person must look and why:

- ``class_not_automated``: a label was predicted for a class whose validated F1 lower bound is
  below the automation target; such a label is never issued without review;
- ``near_threshold``: a class's probability lies inside that class's uncertainty band around its
  threshold ``t``: ``[band_low, band_high)`` for an automated class; ``[band_low, t)`` for a
  non-automated one (its labels, at or above ``t``, are reviewed as ``class_not_automated``).

The band's edges have rules of their own (``export.calibration.automation``, docs/review.md):
``band_high`` is where issued labels reach the target precision, ``band_low`` where the absences
below it keep their miss rate (positives among them) under the target miss rate. A probability
below ``band_low`` is an absence issued without a person, for every class.

A document needs review when it has at least one reason. Pure numpy; no I/O.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray
from pydantic import BaseModel, ConfigDict, Field, model_validator

BoolArray = NDArray[np.bool_]
ReasonKind = Literal["class_not_automated", "near_threshold"]


class Estimate(BaseModel):
    """An out-of-fold figure with its bootstrap 95% interval."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    value: float = Field(ge=0.0, le=1.0)
    low: float = Field(ge=0.0, le=1.0)
    high: float = Field(ge=0.0, le=1.0)


class ClassAutomation(BaseModel):
    """One class's validated quality and whether its decisions may be issued without a person."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    label: str
    support: int = Field(ge=0, description="validation documents with this class")
    precision: Estimate
    recall: Estimate
    f1: Estimate
    automate: bool = Field(description="f1.low >= the automation target")
    band_low: float = Field(ge=0.0, le=1.0, description="probabilities in [band_low, band_high)")
    band_high: float = Field(ge=0.0, le=1.0, description="are reviewed; see the docs")
    automated_precision: float | None = Field(
        default=None, description="validation precision of the labels issued outside the band"
    )
    automated_share: float | None = Field(
        default=None, description="share of the predicted labels issued outside the band"
    )
    automated_miss_rate: float | None = Field(
        default=None,
        description="validation miss rate (positives among them) of the absences below band_low",
    )
    automated_negative_share: float | None = Field(
        default=None, description="share of the below-threshold documents that are below band_low"
    )

    @model_validator(mode="after")
    def _band_is_ordered(self) -> ClassAutomation:
        if self.band_low > self.band_high:
            raise ValueError("band_low must not exceed band_high")
        return self


class OutOfFoldReview(BaseModel):
    """Review rate and automated-decision quality when each fold's band edges are chosen on the
    other folds (thresholds and ``automate`` as shipped): what the band does on unseen documents."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    review_rate: float = Field(ge=0.0, le=1.0)
    automated_precision: float | None = None
    automated_miss_rate: float | None = None


class AutomationSummary(BaseModel):
    """The manifest section (phase 2: inside the classifier's calibration)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    target_f1: float = Field(ge=0.0, le=1.0, description="--automation-f1 (default 0.63)")
    target_precision: float = Field(
        ge=0.0, le=1.0, description="precision of the labels issued automatically (band_high)"
    )
    target_miss_rate: float | None = Field(
        default=None,
        ge=0.0,
        le=1.0,
        description="miss rate of the absences issued automatically (band_low); absent in "
        "bundles calibrated with the mirrored band (band_low = 2t - band_high)",
    )
    documents: int = Field(ge=1)
    folds: int = Field(ge=2)
    seed: int
    draws: int = Field(ge=1)
    classes: list[ClassAutomation] = Field(min_length=1)
    review_rate: float = Field(
        ge=0.0, le=1.0, description="validation share of documents sent to review (drift alerts)"
    )
    automated_precision: float | None = Field(
        default=None,
        description="validation precision of every label issued without a person (all classes)",
    )
    automated_miss_rate: float | None = Field(
        default=None,
        description="validation miss rate of every absence issued without a person (all classes)",
    )
    oof: OutOfFoldReview | None = Field(
        default=None,
        description="the same three figures with each fold's band edges chosen on the other folds",
    )


@dataclass(frozen=True)
class ReviewReason:
    label: str
    reason: ReasonKind
    probability: float
    threshold: float


@dataclass(frozen=True)
class Review:
    review: bool
    reasons: list[ReviewReason] = field(default_factory=list)


def _reasons(
    probs: NDArray[np.float64],
    t: NDArray[np.float64],
    auto: BoolArray,
    low: NDArray[np.float64],
    high: NDArray[np.float64],
) -> tuple[BoolArray, BoolArray]:
    """[documents, classes] flags: (class_not_automated, near_threshold)."""
    not_automated: BoolArray = (probs >= t) & ~auto
    # automated: [band_low, band_high); not automated: [band_low, t) (its labels: reviewed anyway)
    near: BoolArray = (probs >= low) & (probs < np.where(auto, high, t))
    return not_automated, near


def review_flags(
    probabilities: ArrayLike,
    thresholds: ArrayLike,
    automate: ArrayLike,
    band_low: ArrayLike,
    band_high: ArrayLike,
) -> BoolArray:
    """[documents, classes]: whether each class of each document gives a reason (any kind)."""
    not_automated, near = _reasons(
        np.atleast_2d(np.asarray(probabilities, dtype=np.float64)),
        np.asarray(thresholds, dtype=np.float64),
        np.asarray(automate, dtype=bool),
        np.asarray(band_low, dtype=np.float64),
        np.asarray(band_high, dtype=np.float64),
    )
    flags: BoolArray = not_automated | near
    return flags


def review(
    probabilities: ArrayLike,
    labels: Sequence[str],
    thresholds: ArrayLike,
    automate: ArrayLike,
    band_low: ArrayLike,
    band_high: ArrayLike,
) -> list[Review]:
    """Per document [documents, classes]: whether a person must look, and why (class order)."""
    probs = np.atleast_2d(np.asarray(probabilities, dtype=np.float64))
    t = np.asarray(thresholds, dtype=np.float64)
    auto = np.asarray(automate, dtype=bool)
    low = np.asarray(band_low, dtype=np.float64)
    high = np.asarray(band_high, dtype=np.float64)
    k = len(labels)
    if probs.shape[1] != k or not t.shape == auto.shape == low.shape == high.shape == (k,):
        raise ValueError(f"need {k} values per class, probabilities [documents, {k}]")
    not_automated, near = _reasons(probs, t, auto, low, high)
    kinds: tuple[tuple[ReasonKind, BoolArray], ...] = (
        ("class_not_automated", not_automated),
        ("near_threshold", near),
    )
    out = []
    for d in range(probs.shape[0]):
        reasons = [
            ReviewReason(labels[c], kind, float(probs[d, c]), float(t[c]))
            for c in range(k)
            for kind, flags in kinds
            if flags[d, c]
        ]
        out.append(Review(bool(reasons), reasons))
    return out


def review_with(
    automation: AutomationSummary,
    probabilities: ArrayLike,
    labels: Sequence[str],
    thresholds: ArrayLike,
) -> list[Review]:
    """:func:`review` with a bundle's automation section (what every classifier runtime calls)."""
    classes = automation.classes
    return review(
        probabilities,
        labels,
        thresholds,
        [c.automate for c in classes],
        [c.band_low for c in classes],
        [c.band_high for c in classes],
    )


def review_rate(reviews: Sequence[Review]) -> float:
    return sum(r.review for r in reviews) / len(reviews) if reviews else 0.0


@dataclass(frozen=True)
class AutomaticDecisions:
    """What was issued without a person on labelled data: its labels' precision and its
    absences' miss rate (None where nothing of the kind was issued)."""

    review_rate: float
    precision: float | None
    miss_rate: float | None


def automatic_decisions(
    probabilities: ArrayLike,
    truth: ArrayLike,
    thresholds: ArrayLike,
    automate: ArrayLike,
    band_low: ArrayLike,
    band_high: ArrayLike,
) -> AutomaticDecisions:
    """Score the review rule on labelled documents: in a document that needs no review, every
    label and every absence was issued automatically; in one that does, a person decides it all."""
    probs = np.atleast_2d(np.asarray(probabilities, dtype=np.float64))
    y = np.atleast_2d(np.asarray(truth, dtype=bool))
    t = np.asarray(thresholds, dtype=np.float64)
    reviewed: BoolArray = np.any(review_flags(probs, t, automate, band_low, band_high), axis=1)
    issued = ~reviewed[:, None] & (probs >= t)
    absent = ~reviewed[:, None] & (probs < t)
    return AutomaticDecisions(
        review_rate=float(reviewed.mean()) if reviewed.size else 0.0,
        precision=float(y[issued].mean()) if issued.any() else None,
        miss_rate=float(y[absent].mean()) if absent.any() else None,
    )
