"""Optional API keys: off by default; when on, every route but the probes needs a valid key."""

from __future__ import annotations

import hmac
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from service.api import auth
from service.app import create_app
from service.settings import Settings

ENV_KEY = "k-env-0123456789abcdef"
FILE_KEY = "k-file-fedcba9876543210"


@contextmanager
def client_for(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as client:
        deadline = time.monotonic() + 30
        while client.get("/readyz").status_code != 200 and time.monotonic() < deadline:
            time.sleep(0.05)
        yield client


@pytest.fixture(scope="module")
def keyed(tiny_bundle: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    key_file = tmp_path_factory.mktemp("keys") / "keys.txt"
    key_file.write_text(f"# rotated 2026-11\n\n  {FILE_KEY}  \n")
    settings = Settings(bundles_dir=tiny_bundle.parent, api_keys=[ENV_KEY], api_keys_file=key_file)
    with client_for(settings) as client:
        yield client


def entities(client: TestClient, **headers: str) -> tuple[int, dict[str, object]]:
    response = client.post("/v1/entities", json={"text": "two misal"}, headers=headers)
    return response.status_code, response.json()


def test_without_keys_auth_is_off(tiny_bundle: Path) -> None:
    with client_for(Settings(bundles_dir=tiny_bundle.parent)) as client:
        assert entities(client)[0] == 200
        assert client.get("/v1/models").status_code == 200
        assert "securitySchemes" not in client.get("/openapi.json").json()["components"]


@pytest.mark.parametrize(
    "headers",
    [
        {"Authorization": f"Bearer {ENV_KEY}"},
        {"authorization": f"bearer {FILE_KEY}"},
        {"X-API-Key": FILE_KEY},
        {"x-api-key": ENV_KEY},
    ],
)
def test_a_configured_key_from_env_or_file_is_accepted(
    keyed: TestClient, headers: dict[str, str]
) -> None:
    status, body = entities(keyed, **headers)
    assert status == 200 and "results" in body


@pytest.mark.parametrize(
    ("headers", "message"),
    [
        ({}, "a valid API key is required"),
        ({"Authorization": f"Basic {ENV_KEY}"}, "a valid API key is required"),
        ({"Authorization": "Bearer "}, "a valid API key is required"),
        ({"Authorization": f"Bearer {ENV_KEY}x"}, "not valid"),
        ({"X-API-Key": ENV_KEY[:-1]}, "not valid"),
        ({"X-API-Key": "# rotated 2026-11"}, "not valid"),
    ],
)
def test_missing_or_wrong_keys_get_a_json_401(
    keyed: TestClient, headers: dict[str, str], message: str
) -> None:
    response = keyed.post("/v1/entities", json={"text": "two misal"}, headers=headers)
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")
    error = response.json()["error"]
    assert error["type"] == "unauthorized" and message in error["message"]


def test_probes_and_metrics_stay_open_everything_else_is_closed(keyed: TestClient) -> None:
    assert keyed.get("/healthz").status_code == 200
    assert keyed.get("/readyz").status_code == 200
    assert keyed.get("/metrics").status_code == 200
    for path in ("/v1/models", "/openapi.json", "/docs", "/no-such-route"):
        assert keyed.get(path).status_code == 401, path
    assert keyed.post("/v1/postures", json={"text": "x"}).status_code == 401


def test_metrics_can_require_a_key(tiny_bundle: Path) -> None:
    settings = Settings(bundles_dir=tiny_bundle.parent, api_keys=[ENV_KEY], metrics_auth=True)
    with client_for(settings) as client:
        assert client.get("/metrics").status_code == 401
        assert client.get("/metrics", headers={"X-API-Key": ENV_KEY}).status_code == 200
        assert client.get("/readyz").status_code == 200


def test_openapi_documents_the_401_on_protected_routes_only(keyed: TestClient) -> None:
    schema = keyed.get("/openapi.json", headers={"X-API-Key": ENV_KEY}).json()
    assert set(schema["components"]["securitySchemes"]) == {"bearer", "apiKey"}
    operation = schema["paths"]["/v1/entities"]["post"]
    assert "401" in operation["responses"] and operation["security"]
    ref = operation["responses"]["401"]["content"]["application/json"]["schema"]["$ref"]
    assert ref.rsplit("/", 1)[-1] in schema["components"]["schemas"]
    for probe in ("/healthz", "/readyz", "/metrics"):
        assert "401" not in schema["paths"][probe]["get"]["responses"]
        assert "security" not in schema["paths"][probe]["get"]


def test_every_key_is_compared_even_after_a_match(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[bytes] = []
    real = hmac.compare_digest

    def counting(a: bytes, b: bytes) -> bool:
        calls.append(b)
        return bool(real(a, b))

    monkeypatch.setattr(hmac, "compare_digest", counting)
    keys = [b"first-key", b"second-key", b"third-key"]
    assert auth.key_matches(b"first-key", keys)
    assert not auth.key_matches(b"other", keys)
    assert calls == keys + keys


def test_keys_come_from_the_environment(
    tiny_bundle: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("INFER_BUNDLES_DIR", str(tiny_bundle.parent))
    monkeypatch.setenv("INFER_API_KEYS", f'["{ENV_KEY}", "second-key"]')
    (tmp_path / "keys").write_text("third-key\n")
    monkeypatch.setenv("INFER_API_KEYS_FILE", str(tmp_path / "keys"))
    settings = Settings()
    assert auth.load_api_keys(settings) == [ENV_KEY.encode(), b"second-key", b"third-key"]
    assert ENV_KEY not in repr(settings)  # secrets stay out of logs


@pytest.mark.parametrize("content", ["good-key\nbad key\n", "good-key\n\tno\x07pe\n"])
def test_a_malformed_key_stops_start_up(tiny_bundle: Path, tmp_path: Path, content: str) -> None:
    (tmp_path / "keys").write_text(content)
    settings = Settings(bundles_dir=tiny_bundle.parent, api_keys_file=tmp_path / "keys")
    with pytest.raises(ValueError, match="API key #2"):
        create_app(settings)


def test_an_unreadable_key_file_stops_start_up(tiny_bundle: Path, tmp_path: Path) -> None:
    settings = Settings(bundles_dir=tiny_bundle.parent, api_keys_file=tmp_path / "absent")
    with pytest.raises(ValueError, match="cannot read"):
        create_app(settings)
