"""Ensembles of classifier bundles: the combination served, and its manifest section.

An ensemble bundle references member bundles (by name and the sha256 of their ``bundle.json``)
and combines their per-class probabilities with per-class weights:
``p[d, c] = sum_m weights[c][m] * p_m[d, c]`` (each class's weights are >= 0 and sum to 1), then
decides each class at its own threshold. The weights come from ``export.calibration.ensemble``:
a class keeps a mixture only where it beat the best single member out of fold with a paired 95%
interval above 0; elsewhere its weights are one-hot on that member (the selective ensemble).
Pure numpy; no I/O.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray
from pydantic import BaseModel, ConfigDict, Field, model_validator

from service.review import AutomationSummary

FloatArray = NDArray[np.float64]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class EnsembleMember(_Strict):
    name: str = Field(description="the member bundle's name (loaded once, shared with its routes)")
    manifest_sha256: str = Field(pattern=r"^[0-9a-f]{64}$", description="of its bundle.json")


class ClassCombination(_Strict):
    """How one class is decided, and the out-of-fold evidence for it."""

    label: str
    weights: list[float] = Field(description="one per member, >= 0, summing to 1")
    threshold: float = Field(ge=0.0, le=1.0)
    source: Literal["ensemble", "member"]
    member: int | None = Field(default=None, description="source 'member': which one")
    oof_f1_ensemble: float
    oof_f1_best_member: float
    oof_gain_low: float = Field(description="paired bootstrap 95% interval of the F1 gain, low")
    oof_gain_high: float

    @model_validator(mode="after")
    def _weights_are_a_mixture(self) -> ClassCombination:
        if any(w < 0 for w in self.weights) or abs(sum(self.weights) - 1.0) > 1e-9:
            raise ValueError("weights must be >= 0 and sum to 1")
        if (self.source == "member") != (self.member is not None):
            raise ValueError("a member-sourced class names its member, an ensemble one does not")
        return self


class EnsembleSpec(_Strict):
    """The manifest section of an ensemble bundle (phase 2: task ``ensemble``)."""

    members: list[EnsembleMember] = Field(min_length=2)
    classes: list[ClassCombination] = Field(min_length=1)
    folds: int = Field(ge=2)
    seed: int
    draws: int = Field(ge=1)
    grid: int = Field(ge=1, description="weights searched in steps of 1/grid")
    validation: str = Field(description="the validation file the weights were chosen on")
    automation: AutomationSummary | None = Field(
        default=None,
        description="per-class validated quality, automate flag and review band of the combined "
        "probabilities at the ensemble's thresholds (schema 5); absent: no review fields",
    )

    @model_validator(mode="after")
    def _one_weight_per_member(self) -> EnsembleSpec:
        if any(len(c.weights) != len(self.members) for c in self.classes):
            raise ValueError(f"every class needs {len(self.members)} weights")
        if self.automation is not None and [c.label for c in self.automation.classes] != [
            c.label for c in self.classes
        ]:
            raise ValueError("automation must list every class, in class order")
        return self

    def weight_matrix(self) -> FloatArray:
        return np.asarray([c.weights for c in self.classes], dtype=np.float64)

    def thresholds(self) -> FloatArray:
        return np.asarray([c.threshold for c in self.classes], dtype=np.float64)


def combine(member_probabilities: ArrayLike, weights: ArrayLike) -> FloatArray:
    """[documents, classes] from [members, documents, classes] and per-class [classes, members]."""
    probs = np.asarray(member_probabilities, dtype=np.float64)
    w = np.asarray(weights, dtype=np.float64)
    if probs.ndim != 3 or w.shape != (probs.shape[2], probs.shape[0]):
        raise ValueError(
            f"need [members, documents, classes] probabilities and [classes, members] weights, "
            f"got {probs.shape} and {w.shape}"
        )
    out: FloatArray = np.einsum("mdc,cm->dc", probs, w)
    return out


def decide(
    member_probabilities: ArrayLike, spec: EnsembleSpec
) -> tuple[FloatArray, NDArray[np.bool_]]:
    """The combined probabilities and the per-class decisions (at or above the threshold)."""
    combined = combine(member_probabilities, spec.weight_matrix())
    return combined, combined >= spec.thresholds()
