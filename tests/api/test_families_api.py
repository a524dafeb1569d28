"""The registry's (task, head) table and the data plane: a softmax-head bundle is served by the
NER runtime next to a CRF bundle, through the same route; an unknown family stops start-up."""

from __future__ import annotations

import dataclasses
import json
import shutil
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from families.ner import serving as ner_serving
from families.ner.runtime import NerPipeline
from families.ner.spec import NerManifest
from service.app import create_app
from service.bundle import BundleError, read_manifest
from service.families import SERVING_FAMILIES
from service.registry import ModelRegistry
from service.runtime.session import OnnxSession
from service.settings import Settings

TEXTS = ["Angela Merkel met Emmanuel in Paris", "", "order 2 misal from tushar"]


@pytest.fixture()
def two_heads(tiny_bundle: Path, tmp_path: Path) -> Path:
    """The tiny CRF bundle, and the same graph declared as a softmax-head bundle (schema 3)."""
    shutil.copytree(tiny_bundle, tmp_path / "tiny-ner")
    softmax = tmp_path / "tiny-softmax"
    shutil.copytree(tiny_bundle, softmax)
    manifest = json.loads((softmax / "bundle.json").read_text())
    manifest.update(name="tiny-softmax", schema_version=3)
    manifest["ner"].update(head="softmax", crf=None)
    (softmax / "bundle.json").write_text(json.dumps(manifest))
    return tmp_path


def test_each_head_is_served_by_its_runtime_through_one_route(two_heads: Path) -> None:
    with TestClient(create_app(Settings(bundles_dir=two_heads))) as client:
        deadline = time.monotonic() + 60
        while client.get("/readyz").status_code != 200 and time.monotonic() < deadline:
            time.sleep(0.05)
        cards = {m["name"]: m for m in client.get("/v1/models").json()["models"]}
        assert cards["tiny-ner"]["details"]["head"] == "crf"
        assert cards["tiny-softmax"]["details"]["head"] == "softmax"
        answer = client.post("/v1/entities", json={"texts": TEXTS, "model": "tiny-softmax"})
        assert answer.status_code == 200
        ambiguous = client.post("/v1/entities", json={"text": "x"})
        assert ambiguous.status_code == 422 and "tiny-softmax" in ambiguous.text
    bundle = two_heads / "tiny-softmax"
    manifest = read_manifest(bundle)
    assert isinstance(manifest, NerManifest)
    direct = NerPipeline(manifest, bundle, OnnxSession(bundle / "model.onnx", "emissions", 1))
    expected = [
        [{k: v for k, v in vars(e).items() if k != "alternatives"} for e in found]
        for found in direct.predict(TEXTS).entities
    ]
    assert [r["entities"] for r in answer.json()["results"]] == expected
    assert direct.decoder.crf.transitions.max() == 0.0  # zero transitions plus constraints


def test_a_bundle_no_runtime_serves_stops_start_up(two_heads: Path) -> None:
    crf_only = dataclasses.replace(ner_serving.FAMILY, runtimes={"crf": NerPipeline.from_bundle})
    families = tuple(crf_only if f.task == "ner" else f for f in SERVING_FAMILIES)
    settings = Settings(bundles_dir=two_heads)
    app = create_app(settings, ModelRegistry(settings, families))
    refused = "no runtime serves task 'ner' with head 'softmax'"
    with pytest.raises(BundleError, match=refused), TestClient(app):
        pass
