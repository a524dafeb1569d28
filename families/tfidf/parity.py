"""The parity gate: the bundle's own probabilities (loaded as the service loads them) against the
pipeline's ``predict_proba`` on held-out documents; refused beyond ``atol``, naming documents."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from export.errors import ParityError
from families.tfidf.runtime import TfidfModel
from families.tfidf.spec import TfidfManifest
from service.bundle import ParityReport

WORST_LISTED = 10


def check_parity(
    pipeline: object,
    manifest: TfidfManifest,
    bundle_dir: Path,
    documents: list[str],
    atol: float,
) -> ParityReport:
    if not documents:
        raise ParityError("the parity gate needs at least one held-out document")
    served = TfidfModel.load(manifest, bundle_dir).probabilities(documents)
    expected = np.asarray(pipeline.predict_proba(documents), dtype=np.float64)  # type: ignore[attr-defined]
    if served.shape != expected.shape:
        raise ParityError(
            f"served probabilities have shape {served.shape}, predict_proba {expected.shape}"
        )
    per_doc = np.abs(served - expected).max(axis=1)
    order = np.argsort(-per_doc, kind="stable")
    bad = [int(i) for i in order if per_doc[i] > atol]
    if bad:
        named = "; ".join(
            f"#{i} ({documents[i][:60]!r}): {per_doc[i]:.3g}" for i in bad[:WORST_LISTED]
        )
        more = f" and {len(bad) - WORST_LISTED} more" if len(bad) > WORST_LISTED else ""
        raise ParityError(
            f"{len(bad)} of {len(documents)} held-out documents differ from predict_proba by more "
            f"than {atol:g}: {named}{more}"
        )
    return ParityReport(
        atol=atol,
        max_abs_diff=float(per_doc.max()),
        cases=len(documents),
        details=[
            {"document": int(i), "max_abs_diff": float(per_doc[i])} for i in order[:WORST_LISTED]
        ],
    )
