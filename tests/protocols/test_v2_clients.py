"""Clients nobody here wrote (tritonclient HTTP and gRPC, the kserve SDK's REST client) against a
real service on the default bundles: every answer equals /v1's for the same texts."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tritonclient.grpc as tritongrpc
import tritonclient.http as tritonhttp

from tests.protocols.v2_server import V1, Server, decoded, texts_for, v1_results

ROOT = Path(__file__).resolve().parents[2]
BUNDLES = {"ner-food": "ner", "intent-food": "classify", "postures-legal": "postures"}
KSERVE_SCRIPT = Path(__file__).with_name("kserve_client.py")

pytestmark = pytest.mark.slow


def assert_equal_to_v1(task: str, outputs: dict[str, Any], v1: list[dict[str, Any]]) -> None:
    """v2 output tensors (numpy arrays or lists) against /v1's results for the same texts."""
    _, field = V1[task]
    assert decoded(outputs["entities" if task == "ner" else "labels"]) == [r[field] for r in v1]
    if task == "ner":
        assert set(outputs) == {"entities"}
        return
    labels = list(v1[0]["scores"])  # /v1 lists every class's score in the bundle's label order
    classes = [c.decode() if isinstance(c, bytes) else c for c in outputs["classes"]]
    assert classes == labels
    expected = np.array([[r["scores"][label] for label in labels] for r in v1], dtype=np.float64)
    probabilities = np.asarray(outputs["probabilities"], dtype=np.float64).reshape(expected.shape)
    np.testing.assert_allclose(probabilities, expected, rtol=1e-6, atol=1e-7)
    predicted = np.asarray(outputs["predicted"], dtype=bool).reshape(expected.shape)
    wanted = np.array([[label in {p["label"] for p in r[field]} for label in labels] for r in v1])
    np.testing.assert_array_equal(predicted, wanted)
    assert list(np.asarray(outputs["windows"]).reshape(-1)) == [r["windows"] for r in v1]


# Every bundle as is, and the classifiers with the top_k request parameter.
HTTP_CASES = [(m, None) for m in sorted(BUNDLES)] + [("intent-food", 1), ("postures-legal", 1)]


@pytest.mark.parametrize(("model", "top_k"), HTTP_CASES)
def test_tritonclient_http_equals_v1(server: Server, model: str, top_k: int | None) -> None:
    task = BUNDLES[model]
    texts = texts_for(task)
    client = tritonhttp.InferenceServerClient(server.http_hostport, network_timeout=120)
    assert client.is_server_live() and client.is_server_ready() and client.is_model_ready(model)
    tensor = tritonhttp.InferInput("text", [len(texts)], "BYTES")
    tensor.set_data_from_numpy(np.array([t.encode() for t in texts], dtype=object))  # binary
    parameters = {"top_k": top_k} if top_k is not None else None
    result = client.infer(model, [tensor], parameters=parameters, request_id="req-7")
    response = result.get_response()
    assert response["model_name"] == model and response["id"] == "req-7"
    names = [o["name"] for o in response["outputs"]]
    outputs = {name: result.as_numpy(name) for name in names}
    v1 = v1_results(server, task, model, texts, top_k)
    assert_equal_to_v1(task, outputs, v1)
    # The same in plain JSON (no binary tensor data either way).
    tensor.set_data_from_numpy(np.array([t.encode() for t in texts], dtype=object), False)
    requested = [tritonhttp.InferRequestedOutput(n, binary_data=False) for n in names]
    result = client.infer(model, [tensor], outputs=requested, parameters=parameters)
    assert_equal_to_v1(task, {n: result.as_numpy(n) for n in names}, v1)


@pytest.mark.parametrize("model", sorted(BUNDLES))
def test_tritonclient_grpc_equals_v1(server: Server, model: str) -> None:
    task = BUNDLES[model]
    texts = texts_for(task)
    client = tritongrpc.InferenceServerClient(server.grpc)
    assert client.is_server_live() and client.is_server_ready() and client.is_model_ready(model)
    metadata = client.get_model_metadata(model, as_json=True)
    assert metadata["inputs"] == [{"name": "text", "datatype": "BYTES", "shape": ["-1"]}]
    tensor = tritongrpc.InferInput("text", [len(texts)], "BYTES")
    tensor.set_data_from_numpy(np.array([t.encode() for t in texts], dtype=object))
    result = client.infer(model, [tensor], request_id="g-1", client_timeout=120)
    response = result.get_response(as_json=True)
    assert response["model_name"] == model and response["id"] == "g-1"
    names = [o["name"] for o in response["outputs"]]
    outputs = {name: result.as_numpy(name) for name in names}
    assert_equal_to_v1(task, outputs, v1_results(server, task, model, texts))
    if task != "ner":
        result = client.infer(model, [tensor], parameters={"top_k": 1}, client_timeout=120)
        outputs = {name: result.as_numpy(name) for name in names}
        v1 = v1_results(server, task, model, texts, top_k=1)
        assert_equal_to_v1(task, outputs, v1)


def kserve_python() -> Path:
    """The kserve SDK lives in its own venv (``make kserve-venv``, made here when missing): its
    protobuf<7 pin conflicts with the service's generated stubs (protobuf>=7.35) in ours."""
    override = os.environ.get("KSERVE_PYTHON")
    if override:
        return Path(override)
    subprocess.run(
        ["make", "-s", "kserve-venv", f"PYTHON={sys.executable}"], cwd=ROOT, check=True, timeout=900
    )
    return ROOT / ".cache" / "kserve-venv" / "bin" / "python"


@pytest.mark.parametrize("model", sorted(BUNDLES))
def test_kserve_rest_client_equals_v1(server: Server, model: str) -> None:
    python = kserve_python()
    assert python.exists(), f"{python} missing: run `make kserve-venv` (kserve SDK, own venv)"
    task = BUNDLES[model]
    texts = texts_for(task)
    request = {"base_url": server.http, "model": model, "texts": texts}
    done = subprocess.run(
        [str(python), str(KSERVE_SCRIPT)],
        input=json.dumps(request),
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    answer = json.loads(done.stdout)
    assert answer["model_name"] == model
    outputs = {o["name"]: o["data"] for o in answer["outputs"]}
    assert_equal_to_v1(task, outputs, v1_results(server, task, model, texts))
