"""Per-class automation and review routing, for every classifier (family-independent).

A bundle's calibration may carry, per class, its validated quality and an ``automate`` flag
(:class:`ClassAutomation`, computed by ``export.calibration.automation``). At serving time
:func:`review` says, per document, whether a person must look and why:

- ``class_not_automated``: a label was predicted for a class whose validated F1 lower bound is
  below the automation target; such a label is never issued without review;
- ``near_threshold``: a class's probability lies inside that class's uncertainty band
  ``[band_low, band_high)`` around its threshold, predicted or not (automated classes only: a
  non-automated class's predicted labels are reviewed anyway, its absent ones are not flagged).

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

    @model_validator(mode="after")
    def _band_is_ordered(self) -> ClassAutomation:
        if self.band_low > self.band_high:
            raise ValueError("band_low must not exceed band_high")
        return self


class AutomationSummary(BaseModel):
    """The manifest section (phase 2: inside the classifier's calibration)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    target_f1: float = Field(ge=0.0, le=1.0, description="--automation-f1 (default 0.63)")
    target_precision: float = Field(ge=0.0, le=1.0, description="precision the band aims for")
    documents: int = Field(ge=1)
    folds: int = Field(ge=2)
    seed: int
    draws: int = Field(ge=1)
    classes: list[ClassAutomation] = Field(min_length=1)
    review_rate: float = Field(
        ge=0.0, le=1.0, description="validation share of documents sent to review (drift alerts)"
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
    predicted = probs >= t
    not_automated = predicted & ~auto
    near = auto & (probs >= low) & (probs < high)
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


def review_rate(reviews: Sequence[Review]) -> float:
    return sum(r.review for r in reviews) / len(reviews) if reviews else 0.0
