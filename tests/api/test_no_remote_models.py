"""No caller can make the service load a model: no management route, ``model`` is only a name.

TorchServe's ShellTorch lesson: a route that loads a model from a caller-given URL or path is a
remote-code-execution hole (ONNX graphs and pickles are code). Here the set of routes is closed,
and a ``model`` value is looked up in the registry loaded at start-up, nothing else: an audit
hook proves no file is opened and no socket connects while such requests are answered.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from starlette.routing import BaseRoute

from service.app import create_app
from service.bundle import BundleError
from service.settings import Settings
from tests.helpers import free_port

# Every operation the API has. A new route must be added here, on purpose, after review.
OPERATIONS = {
    ("POST", "/v1/entities"),
    ("POST", "/v1/postures"),
    ("POST", "/v1/classify"),
    ("POST", "/v1/parse"),
    ("POST", "/v1/redact"),
    ("GET", "/v1/models"),
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("GET", "/metrics"),
}
# The Open Inference Protocol v2 routes (docs/api-v2.md): the same data plane, no management API.
V2_OPERATIONS = {
    ("GET", "/v2"),
    ("GET", "/v2/health/live"),
    ("GET", "/v2/health/ready"),
    ("GET", "/v2/models/{name}"),
    ("GET", "/v2/models/{name}/versions/{version}"),
    ("GET", "/v2/models/{name}/ready"),
    ("GET", "/v2/models/{name}/versions/{version}/ready"),
    ("POST", "/v2/models/{name}/infer"),
    ("POST", "/v2/models/{name}/versions/{version}/infer"),
}
OPERATIONS |= V2_OPERATIONS
# HEAD on the probes (load balancers use it) is served but not in the OpenAPI schema.
PROBE_HEADS = {("HEAD", "/healthz"), ("HEAD", "/readyz")}
DOCS = {"/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc"}
HOSTILE = [
    "../../etc/passwd",
    "/tmp/x",
    "/etc/passwd",
    "http://127.0.0.1:1/evil.onnx",
    "https://example.invalid/model.onnx",
    "file:///etc/passwd",
    "tiny-ner/../tiny-ner",
    "tiny-ner/model.onnx",
    "~/.ssh/id_rsa",
]
WATCHED = {"open", "os.open", "os.listdir", "os.scandir", "socket.connect", "socket.getaddrinfo"}


class Audit:
    """Records file opens and network events from any thread while ``active``."""

    def __init__(self) -> None:
        self.active = False
        self.events: list[tuple[str, str]] = []
        sys.addaudithook(self.hook)  # cannot be removed: stays inert once inactive

    def hook(self, event: str, args: tuple[object, ...]) -> None:
        if not self.active or event not in WATCHED:
            return
        if event == "open" and str(args[0]).endswith(".py"):
            return  # linecache reading our own source for a traceback: not a model file
        self.events.append((event, repr(args)[:200]))


AUDIT = Audit()


@pytest.fixture(scope="module")
def client(tiny_bundle: Path) -> Iterator[TestClient]:
    with TestClient(create_app(Settings(bundles_dir=tiny_bundle.parent))) as client:
        deadline = time.monotonic() + 30
        while client.get("/readyz").status_code != 200 and time.monotonic() < deadline:
            time.sleep(0.05)
        yield client


def walk(routes: list[BaseRoute]) -> Iterator[BaseRoute]:
    """Every route, also inside included routers (FastAPI >= 0.120 keeps them nested)."""
    for route in routes:
        nested = getattr(route, "original_router", None)
        if nested is not None:
            yield from walk(nested.routes)
        else:
            yield route


def test_the_route_set_is_closed_and_has_no_management_api(client: TestClient) -> None:
    routes = list(walk(client.app.routes))  # type: ignore[attr-defined]
    api = {(m, r.path) for r in routes if isinstance(r, APIRoute) for m in r.methods or ()}
    assert api == OPERATIONS | PROBE_HEADS
    assert {getattr(r, "path", None) for r in routes if not isinstance(r, APIRoute)} <= DOCS
    schema = client.get("/openapi.json").json()
    # the served document lists the v2 infer routes once per loaded model (service/api/openapi.py)
    models = [m["name"] for m in client.get("/v1/models").json()["models"]]
    assert "/v2/models/{name}/infer" not in schema["paths"]
    paths = {p: p for p in schema["paths"]}
    for path in schema["paths"]:
        for name in models:
            paths[path] = paths[path].replace(f"/v2/models/{name}/", "/v2/models/{name}/")
    documented = {(m.upper(), paths[p]) for p, ops in schema["paths"].items() for m in ops}
    assert documented == OPERATIONS


def test_no_request_schema_takes_a_url_path_or_file(client: TestClient) -> None:
    schemas = client.get("/openapi.json").json()["components"]["schemas"]
    fields = {
        f
        for name in ("EntitiesRequest", "PosturesRequest", "RedactRequest")
        for f in schemas[name]["properties"]
    }
    entity_options = {"labels", "min_score", "truncation", "return_alternatives", "words"}
    redaction = {"mode", "return_mapping", "mask_char", "hash_chars"}
    assert (
        fields <= {"text", "texts", "model", "top_k", "return_scores"} | entity_options | redaction
    )
    for name in ("EntitiesRequest", "PosturesRequest", "RedactRequest"):
        model = schemas[name]["properties"]["model"]
        assert "format" not in str(model)  # a plain string name, not a uri/path


@pytest.mark.parametrize("route", ["/v1/entities", "/v1/postures", "/v1/redact"])
@pytest.mark.parametrize("name", HOSTILE)
def test_a_path_or_url_as_model_is_404_without_touching_disk_or_network(
    client: TestClient, route: str, name: str
) -> None:
    AUDIT.events.clear()
    AUDIT.active = True
    try:
        response = client.post(route, json={"text": "ek misal", "model": name})
    finally:
        AUDIT.active = False
    assert response.status_code == 404
    assert response.json()["error"]["type"] == "model_not_found"
    assert AUDIT.events == []


@pytest.mark.parametrize(
    "model", [{"url": "http://127.0.0.1:1/evil.onnx"}, ["../x"], 7, {"path": "/tmp/x"}]
)
def test_a_structured_model_value_is_422(client: TestClient, model: object) -> None:
    AUDIT.events.clear()
    AUDIT.active = True
    try:
        response = client.post("/v1/entities", json={"text": "ek misal", "model": model})
    finally:
        AUDIT.active = False
    assert response.status_code == 422 and response.json()["error"]["field"] == "model"
    assert AUDIT.events == []


def test_the_audit_hook_does_see_file_and_network_access(tmp_path: Path) -> None:
    """Guards the tests above: an inert hook would pass them vacuously."""
    AUDIT.events.clear()
    AUDIT.active = True
    try:
        (tmp_path / "model.onnx").write_bytes(b"")
        with pytest.raises(httpx.TransportError):
            httpx.get(f"http://127.0.0.1:{free_port()}/", timeout=1)
    finally:
        AUDIT.active = False
    assert {"open", "socket.connect"} <= {event for event, _ in AUDIT.events}


def truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def test_a_truncated_onnx_file_stops_the_process_before_it_listens(
    tiny_bundle: Path, tmp_path: Path
) -> None:
    shutil.copytree(tiny_bundle, tmp_path / "tiny-ner")
    truncate(tmp_path / "tiny-ner" / "model.onnx")
    port = free_port()
    env = {**os.environ, "INFER_BUNDLES_DIR": str(tmp_path), "INFER_PORT": str(port)}
    done = subprocess.run(
        [sys.executable, "-m", "service"], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode != 0
    assert "sha256" in done.stderr and "truncated" in done.stderr
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1)


def test_an_altered_tokenizer_stops_start_up(tiny_bundle: Path, tmp_path: Path) -> None:
    """A still-valid tokenizer.json with one vocabulary entry changed: predictions would shift
    silently, so its sha256 in the manifest stops start-up."""
    shutil.copytree(tiny_bundle, tmp_path / "tiny-ner")
    path = tmp_path / "tiny-ner" / "tokenizer.json"
    tokenizer = json.loads(path.read_text())
    vocab = tokenizer["model"]["vocab"]
    vocab["zzzaltered"] = vocab.pop("the")
    path.write_text(json.dumps(tokenizer))
    app = create_app(Settings(bundles_dir=tmp_path))
    with pytest.raises(BundleError, match=r"tokenizer\.json: sha256"), TestClient(app):
        pass


def test_a_truncated_tokenizer_in_an_older_bundle_keeps_readiness_red_with_the_reason(
    tiny_bundle: Path, tmp_path: Path
) -> None:
    # Bundles exported before the tokenizer's sha256 was recorded: it fails when loaded, in the
    # background, and readiness says why.
    shutil.copytree(tiny_bundle, tmp_path / "tiny-ner")
    manifest_path = tmp_path / "tiny-ner" / "bundle.json"
    manifest = json.loads(manifest_path.read_text())
    del manifest["tokenizer"]["sha256"]
    manifest_path.write_text(json.dumps(manifest))
    truncate(tmp_path / "tiny-ner" / "tokenizer.json")
    with TestClient(create_app(Settings(bundles_dir=tmp_path))) as client:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            ready = client.get("/readyz")
            assert ready.status_code == 503
            if "loading" not in ready.json()["error"]["message"]:
                break
            time.sleep(0.05)
        error = ready.json()["error"]
        assert error["type"] == "not_ready" and "still loading" not in error["message"]
        assert client.post("/v1/entities", json={"text": "ek misal"}).status_code == 503
        time.sleep(0.5)
        assert client.get("/readyz").status_code == 503
