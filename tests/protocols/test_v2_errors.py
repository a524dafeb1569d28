"""Bad tensors get the protocol's error (REST ``{"error": "..."}`` with a 4xx, gRPC
INVALID_ARGUMENT), never a 5xx; the model routes stay answerable after each."""

from __future__ import annotations

import json
from typing import Any

import grpc
import httpx
import numpy as np
import pytest
import tritonclient.grpc as tritongrpc
import tritonclient.http as tritonhttp

# tritonclient's stubs of the same protocol: ours (also package "inference") cannot share a
# process's protobuf descriptor pool with them.
from tritonclient.grpc import service_pb2 as pb
from tritonclient.grpc import service_pb2_grpc as pb_grpc
from tritonclient.utils import InferenceServerException

from tests.protocols.v2_server import LIMITS, Server

pytestmark = pytest.mark.slow

TOO_LONG = {
    "ner-food": int(LIMITS["INFER_MAX_TEXT_CHARS"]) + 1,
    "intent-food": int(LIMITS["INFER_MAX_DOCUMENT_CHARS"]) + 1,
    "postures-legal": int(LIMITS["INFER_MAX_DOCUMENT_CHARS"]) + 1,
}


def text_input(data: Any, shape: list[int], datatype: str = "BYTES", name: str = "text") -> Any:
    return {"name": name, "shape": shape, "datatype": datatype, "data": data}


# (case, model, body, words the error must contain)
REST_CASES: list[tuple[str, str, Any, list[str]]] = [
    ("wrong datatype", "ner-food", {"inputs": [text_input([1.0], [1], "FP32")]}, ["FP32", "BYTES"]),
    ("wrong shape", "intent-food", {"inputs": [text_input([["a", "b"]], [1, 2])]}, ["shape"]),
    ("count off shape", "intent-food", {"inputs": [text_input(["a"], [2])]}, ["shape [2]"]),
    ("missing input", "ner-food", {"inputs": [text_input(["a"], [1], name="txt")]}, ["'text'"]),
    ("no inputs", "ner-food", {"inputs": []}, ["missing input"]),
    ("not a string", "ner-food", {"inputs": [text_input([5], [1])]}, ["text'[0]"]),
    ("no texts", "intent-food", {"inputs": [text_input([], [0])]}, ["at least one"]),
    ("too long (NER)", "ner-food", None, ["characters", "limit"]),
    ("too long (classifier)", "intent-food", None, ["characters", "limit"]),
    ("too long (postures)", "postures-legal", None, ["characters", "limit"]),
    (
        "top_k zero",
        "intent-food",
        {"inputs": [text_input(["a"], [1])], "parameters": {"top_k": 0}},
        ["top_k"],
    ),
    (
        "top_k on NER",
        "ner-food",
        {"inputs": [text_input(["a"], [1])], "parameters": {"top_k": 2}},
        ["top_k"],
    ),
    (
        "unknown output",
        "intent-food",
        {"inputs": [text_input(["a"], [1])], "outputs": [{"name": "nope"}]},
        ["nope"],
    ),
    ("no inputs field", "intent-food", {"input": []}, ["inputs"]),
]


@pytest.mark.parametrize(
    ("case", "model", "body", "words"), REST_CASES, ids=[c[0] for c in REST_CASES]
)
def test_rest_bad_tensors_get_400(
    server: Server, case: str, model: str, body: Any, words: list[str]
) -> None:
    if body is None:
        body = {"inputs": [text_input(["x" * TOO_LONG[model]], [1])]}
    response = httpx.post(f"{server.http}/v2/models/{model}/infer", json=body, timeout=60)
    assert response.status_code == 400, response.text
    error = response.json()
    assert set(error) == {"error"} and isinstance(error["error"], str)
    for word in words:
        assert word in error["error"]


def test_rest_malformed_bodies_get_400(server: Server) -> None:
    url = f"{server.http}/v2/models/ner-food/infer"
    for content, headers in (
        (b"{not json", {}),
        (b"\xff\xfe", {}),
        (b'{"inputs": []}', {"Inference-Header-Content-Length": "99"}),
        (  # binary data claiming more bytes than sent
            json.dumps(
                {
                    "inputs": [
                        {
                            "name": "text",
                            "shape": [1],
                            "datatype": "BYTES",
                            "parameters": {"binary_data_size": 50},
                        }
                    ]
                }
            ).encode(),
            {"Inference-Header-Content-Length": "0"},
        ),
    ):
        response = httpx.post(url, content=content, headers=headers, timeout=60)
        assert response.status_code == 400, (content, response.text)
        assert set(response.json()) == {"error"}


def test_rest_unknown_model_or_version_is_404(server: Server) -> None:
    for path in ("/v2/models/nope", "/v2/models/ner-food/versions/999", "/v2/models/nope/ready"):
        response = httpx.get(server.http + path, timeout=10)
        assert response.status_code == 404 and set(response.json()) == {"error"}
    body = {"inputs": [text_input(["a"], [1])]}
    response = httpx.post(f"{server.http}/v2/models/nope/infer", json=body, timeout=10)
    assert response.status_code == 404 and "nope" in response.json()["error"]


def test_tritonclient_sees_the_errors(server: Server) -> None:
    """The errors reach real clients as exceptions with the status and the message."""
    http = tritonhttp.InferenceServerClient(server.http_hostport)
    bad = tritonhttp.InferInput("text", [1], "FP32")
    bad.set_data_from_numpy(np.zeros(1, np.float32))
    with pytest.raises(InferenceServerException) as raised:
        http.infer("intent-food", [bad])
    assert raised.value.status() == "400" and "BYTES" in raised.value.message()
    grpc_client = tritongrpc.InferenceServerClient(server.grpc)
    for tensor, data, words in (
        (tritongrpc.InferInput("text", [1], "FP32"), np.zeros(1, np.float32), "BYTES"),
        (tritongrpc.InferInput("text", [1, 1], "BYTES"), np.array([[b"a"]], object), "shape"),
        (tritongrpc.InferInput("txt", [1], "BYTES"), np.array([b"a"], object), "missing"),
        (
            tritongrpc.InferInput("text", [1], "BYTES"),
            np.array([b"x" * TOO_LONG["ner-food"]], object),
            "limit",
        ),
    ):
        tensor.set_data_from_numpy(data)
        with pytest.raises(InferenceServerException) as raised:
            grpc_client.infer("ner-food", [tensor])
        assert raised.value.status() == "StatusCode.INVALID_ARGUMENT", raised.value
        assert words in raised.value.message()


def test_grpc_malformed_requests_are_invalid_argument(server: Server) -> None:
    with grpc.insecure_channel(server.grpc) as channel:
        stub = pb_grpc.GRPCInferenceServiceStub(channel)
        tensor = pb.ModelInferRequest.InferInputTensor
        for request in (
            # raw contents whose length prefix runs past the end
            pb.ModelInferRequest(
                model_name="ner-food",
                inputs=[tensor(name="text", datatype="BYTES", shape=[1])],
                raw_input_contents=[b"\xff\x00\x00\x00abc"],
            ),
            # two raw buffers for one input
            pb.ModelInferRequest(
                model_name="ner-food",
                inputs=[tensor(name="text", datatype="BYTES", shape=[1])],
                raw_input_contents=[b"\x01\x00\x00\x00a", b""],
            ),
            # typed contents of the wrong type
            pb.ModelInferRequest(
                model_name="ner-food",
                inputs=[
                    tensor(
                        name="text",
                        datatype="BYTES",
                        shape=[1],
                        contents=pb.InferTensorContents(fp32_contents=[1.0]),
                    )
                ],
            ),
            # invalid UTF-8
            pb.ModelInferRequest(
                model_name="ner-food",
                inputs=[
                    tensor(
                        name="text",
                        datatype="BYTES",
                        shape=[1],
                        contents=pb.InferTensorContents(bytes_contents=[b"\xff"]),
                    )
                ],
            ),
        ):
            with pytest.raises(grpc.RpcError) as raised:
                stub.ModelInfer(request, timeout=30)
            assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT, raised.value
        with pytest.raises(grpc.RpcError) as raised:
            stub.ModelMetadata(pb.ModelMetadataRequest(name="nope"), timeout=10)
        assert raised.value.code() == grpc.StatusCode.NOT_FOUND
        # Still serving after all that.
        good = pb.ModelInferRequest(
            model_name="ner-food",
            inputs=[
                tensor(
                    name="text",
                    datatype="BYTES",
                    shape=[1],
                    contents=pb.InferTensorContents(bytes_contents=[b"tushar se 2 misal"]),
                )
            ],
        )
        answer = stub.ModelInfer(good, timeout=30)
        assert [o.name for o in answer.outputs] == ["entities"]
