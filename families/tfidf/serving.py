"""The TF-IDF family as the service sees it (registered in ``service/families.py``).

TF-IDF bundles answer ``/v1/classify`` with the classifier's results (same result objects and
batch records as the classify family), hold no ONNX graph (their session is a placeholder whose
provider is ``numpy``) and are verified by the sha256 of every data file at load
(``TfidfManifest.bundle_files``). Route: ``classify`` only; a TF-IDF bundle is a generic text
classifier whatever its labels, so ``/v1/postures`` (posture bundles) does not serve it.
"""

from __future__ import annotations

from families.classify.results import classify_results
from families.classify.serving import ClassRecords
from families.tfidf.runtime import TfidfRuntime, numpy_session
from families.tfidf.spec import TfidfManifest
from service.runtime.family import ServingFamily

FAMILY = ServingFamily(
    task="tfidf",
    manifest=TfidfManifest,
    runtimes={
        "multi-label": TfidfRuntime.from_bundle,
        "single-label": TfidfRuntime.from_bundle,
    },
    route="classify",
    batch=ClassRecords(classify_results, "labels"),
    session=numpy_session,
)
