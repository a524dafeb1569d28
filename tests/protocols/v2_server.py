"""A real service with the Open Inference Protocol's REST and gRPC front ends, for the tests."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from tests.helpers import free_port, running_server

# Low character limits so "too long" is cheap to send; every text below is far shorter.
LIMITS = {"INFER_MAX_TEXT_CHARS": "400", "INFER_MAX_DOCUMENT_CHARS": "6000"}
# The /v1 route and the field holding each text's predictions, per bundle task.
V1 = {"ner": ("/v1/entities", "entities"), "classify": ("/v1/classify", "labels")}
V1["postures"] = ("/v1/postures", "postures")


@dataclass
class Server:
    http: str  # http://127.0.0.1:PORT
    grpc: str  # 127.0.0.1:PORT

    @property
    def http_hostport(self) -> str:
        return self.http.removeprefix("http://")


@contextmanager
def v2_server(bundles: Path, **env: str) -> Iterator[Server]:
    port = free_port()
    environ = {"INFER_GRPC_ENABLED": "true", "INFER_GRPC_PORT": str(port), **LIMITS, **env}
    with running_server(bundles, **environ) as base:
        yield Server(base, f"127.0.0.1:{port}")


def texts_for(task: str) -> list[str]:
    if task == "ner":
        return [
            "tushar se 2 misal mangwao",
            "order 3 masala dosa and a filter coffee from saravana bhavan",
            "",
            "send 2 पनीर tikka 🍢 to andheri",
        ]
    if task == "classify":
        return ["where is my order?", "cancel my order please", "order 2 masala dosa", "thanks!"]
    from default_models.legal_corpus import generate_splits

    docs = [d.text for d in generate_splits(n_train=1, n_validation=1, n_test=3)["test"]]
    return [doc[:5000] for doc in docs]


def v1_results(
    server: Server, task: str, model: str, texts: list[str], top_k: int | None = None
) -> list[dict[str, Any]]:
    """What /v1 answers for the texts (with every class's score for classifiers)."""
    path, _ = V1[task]
    body: dict[str, Any] = {"model": model, "texts": texts}
    if task != "ner":
        body["return_scores"] = True
        if top_k is not None:
            body["top_k"] = top_k
    response = httpx.post(server.http + path, json=body, timeout=120)
    assert response.status_code == 200, response.text
    results: list[dict[str, Any]] = response.json()["results"]
    return results


def decoded(column: Any) -> list[Any]:
    """A BYTES tensor of per-text JSON as Python objects."""
    return [json.loads(b.decode("utf-8") if isinstance(b, bytes) else b) for b in column]
