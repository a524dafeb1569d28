"""The ensemble runtime: each member runs the texts through its own runtime (its tokenizer,
windows and batching: ``prepare``/``run_prepared``), and the members' per-class probabilities are
combined with the bundle's per-class weights and decided at its per-class thresholds
(:func:`service.ensemble.decide`). The answer is a multi-label
:class:`~families.classify.runtime.ClassPrediction`, so ``/v1/classify``, ``/v1/postures`` and the
batch scorer write the classify family's result objects.

Members are other loaded models (the registry loads them first and shares them with their own
routes; ``load_runtime`` loads them from sibling bundle directories). At load each must be
present, still be the bundle the ensemble was built on (sha256 of its ``bundle.json``), be a
multi-label classifier and have exactly the ensemble's labels, else the load is refused with the
reason.
"""

from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from families.classify.runtime import ClassPrediction, ClassScore, FloatArray
from families.ensemble.spec import EnsembleManifest
from service.ensemble import decide
from service.manifest import MANIFEST_FILE, BundleError, BundleManifest, sha256_of
from service.review import Review, review_with
from service.runtime.family import RequestOptions, Resolve, Resolved, Runtime
from service.runtime.session import InferenceSession
from service.settings import Settings


@dataclass(frozen=True)
class MembersSession:
    """What ``/v1/models`` and the metrics read as the ensemble's provider: its members' (the
    ensemble runs no graph of its own, so it has nothing to ``run``)."""

    members: tuple[Runtime[Any, Any], ...]

    @property
    def input_names(self) -> list[str]:
        return []

    @property
    def provider(self) -> str:
        return "+".join(sorted({m.session.provider for m in self.members}))

    def run(self, inputs: Any) -> Any:
        raise RuntimeError("an ensemble has no graph of its own; its members run")


@dataclass
class EnsembleInputs:
    """One request, prepared by every member (in member order)."""

    texts: list[str]
    top_k: int | None
    members: list[Any]

    @property
    def num_texts(self) -> int:
        return len(self.texts)

    @property
    def num_windows(self) -> int:
        return sum(int(m.num_windows) for m in self.members)

    @property
    def width(self) -> int:
        return max(int(m.width) for m in self.members)

    @property
    def tokens(self) -> int:
        return sum(int(m.tokens) for m in self.members)

    def split(self, max_windows: int, max_tokens: int) -> list[EnsembleInputs]:
        """Never cut: each member's own runtime batches and windows the texts."""
        return [self]


def check_member(ensemble: EnsembleManifest, index: int, member: Resolved) -> None:
    """Refuse (BundleError, with the reason) a member that is not the bundle the ensemble was
    built on, or not a multi-label classifier over the ensemble's labels."""
    ref = ensemble.ensemble.members[index]
    where = f"ensemble {ensemble.name}: member {ref.name}"
    digest = sha256_of(member.bundle_dir / MANIFEST_FILE)
    if digest != ref.manifest_sha256:
        raise BundleError(
            f"{where} ({member.bundle_dir}) changed: its {MANIFEST_FILE} has sha256 {digest}, the "
            f"ensemble was built on {ref.manifest_sha256}; rebuild the ensemble "
            "(python -m export ensemble)"
        )
    if member.manifest.head != "multi-label":
        raise BundleError(f"{where} is a {member.manifest.head} model; members are multi-label")
    if list(member.manifest.labels) != list(ensemble.labels):
        raise BundleError(
            f"{where} has labels {member.manifest.labels}, the ensemble {ensemble.labels}; "
            "members must have identical labels"
        )


class EnsembleRuntime:
    allow_blank = False  # as a classifier: a blank text has nothing to classify

    def __init__(self, manifest: EnsembleManifest, members: list[Resolved]) -> None:
        for i, member in enumerate(members):
            check_member(manifest, i, member)
        self.manifest = manifest
        self.spec = manifest.ensemble
        self.members = [m.runtime for m in members]
        self.member_names = [m.manifest.name for m in members]
        self.session: InferenceSession = MembersSession(tuple(self.members))
        self.max_chars = min(int(m.max_chars) for m in self.members)
        self.thresholds = self.spec.thresholds()

    @classmethod
    def from_bundle(
        cls, manifest: BundleManifest, bundle_dir: Path, settings: Settings, resolve: Resolve
    ) -> EnsembleRuntime:
        if not isinstance(manifest, EnsembleManifest):
            raise TypeError(f"{manifest.name} is a {manifest.task} bundle, not an ensemble")
        members = []
        for ref in manifest.ensemble.members:
            try:
                members.append(resolve(ref.name))
            except BundleError as exc:
                raise BundleError(
                    f"ensemble {manifest.name}: member {ref.name} is missing: {exc}"
                ) from exc
        return cls(manifest, members)

    def describe(self) -> dict[str, object]:
        return {
            "head": "multi-label",
            "members": self.member_names,
            "classes": [c.model_dump() for c in self.spec.classes],
            "thresholds": dict(zip(self.manifest.labels, self.thresholds.tolist(), strict=True)),
        }

    def prepare(self, texts: list[str], options: RequestOptions | None = None) -> EnsembleInputs:
        plain = RequestOptions()  # members answer every class; top_k applies to the ensemble
        return EnsembleInputs(
            texts=texts,
            top_k=options.top_k if options else None,
            members=[m.prepare(texts, plain) for m in self.members],
        )

    def member_probabilities(self, items: list[EnsembleInputs]) -> list[list[Any]]:
        """Per member, its predictions of every item (one ``run_prepared`` call per member)."""
        return [
            member.run_prepared([item.members[i] for item in items])
            for i, member in enumerate(self.members)
        ]

    def run_prepared(self, items: list[EnsembleInputs]) -> list[ClassPrediction]:
        outputs = self.member_probabilities(items)
        return [self._combine(item, [out[j] for out in outputs]) for j, item in enumerate(items)]

    def run_slice(self, part: EnsembleInputs) -> ClassPrediction:
        return self.run_prepared([part])[0]

    def merge(self, item: EnsembleInputs, parts: list[ClassPrediction]) -> ClassPrediction:
        (whole,) = parts  # never split
        return whole

    def predict(self, texts: list[str], top_k: int | None = None) -> ClassPrediction:
        return self.run_prepared([self.prepare(texts, RequestOptions(top_k=top_k))])[0]

    def _combine(self, item: EnsembleInputs, predictions: list[Any]) -> ClassPrediction:
        started = time.perf_counter()
        stacked = np.stack([np.asarray(p.probabilities, dtype=np.float64) for p in predictions])
        combined, decided = decide(stacked, self.spec)
        timings: dict[str, float] = defaultdict(float)
        for p in predictions:
            for key, seconds in p.timings.items():
                timings[key] += seconds
        timings["decode"] += time.perf_counter() - started
        return ClassPrediction(
            labels=[
                self._chosen(probs, mask, item.top_k)
                for probs, mask in zip(combined, decided, strict=True)
            ],
            probabilities=combined,
            windows=[max(w) for w in zip(*(p.windows for p in predictions), strict=True)],
            tokens=max(int(p.tokens) for p in predictions),
            timings=dict(timings),
            text_tokens=[max(t) for t in zip(*(p.text_tokens for p in predictions), strict=True)],
            truncated=[any(t) for t in zip(*(p.truncated for p in predictions), strict=True)],
            reviews=self._review(combined),
        )

    def _review(self, combined: FloatArray) -> list[Review] | None:
        """Per text, who decides (docs/review.md); None when the bundle has no automation."""
        automation = self.spec.automation
        if automation is None:
            return None
        return review_with(automation, combined, self.manifest.labels, self.thresholds)

    def _chosen(self, probs: FloatArray, mask: Any, top_k: int | None) -> list[ClassScore]:
        chosen = np.flatnonzero(mask)
        order = chosen[np.argsort(-probs[chosen], kind="stable")]
        labels = self.manifest.labels
        return [
            ClassScore(labels[c], float(probs[c]), float(self.thresholds[c])) for c in order[:top_k]
        ]
