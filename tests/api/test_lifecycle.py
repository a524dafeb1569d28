"""Readiness: 503 until bundles are loaded and warmed up; a broken bundle stops start-up."""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from families.ner.runtime import NerInputs, NerPrediction
from service.app import create_app
from service.bundle import BundleError
from service.registry import ModelRegistry
from service.settings import Settings
from tests.run_hooks import RunHooks


class GatedRegistry(ModelRegistry):
    """Loads only after the test opens the gate, so the not-ready window can be observed."""

    gate = threading.Event()

    def load(self) -> None:
        self.gate.wait(timeout=30)
        super().load()


def test_ready_only_after_load_and_warm_up(tiny_bundle: Path) -> None:
    settings = Settings(bundles_dir=tiny_bundle.parent)
    with TestClient(create_app(settings, GatedRegistry(settings))) as client:
        assert client.get("/healthz").status_code == 200
        not_ready = client.get("/readyz")
        assert not_ready.status_code == 503 and not_ready.json()["error"]["type"] == "not_ready"
        assert client.post("/v1/entities", json={"text": "x"}).status_code == 503
        GatedRegistry.gate.set()
        deadline = time.monotonic() + 30
        while client.get("/readyz").status_code != 200 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert client.get("/readyz").status_code == 200
        assert client.post("/v1/entities", json={"text": "x"}).status_code == 200


def test_tampered_bundle_stops_start_up(tiny_bundle: Path, tmp_path: Path) -> None:
    shutil.copytree(tiny_bundle, tmp_path / "tiny-ner")
    (tmp_path / "tiny-ner" / "model.onnx").write_bytes(b"truncated")
    app = create_app(Settings(bundles_dir=tmp_path))
    with pytest.raises(BundleError, match="sha256"), TestClient(app):
        pass


def test_missing_bundles_dir_is_a_settings_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="does not exist"):
        Settings(bundles_dir=tmp_path / "absent")


def test_a_crashing_model_gives_json_500_and_the_app_keeps_serving(tiny_bundle: Path) -> None:
    settings = Settings(bundles_dir=tiny_bundle.parent)
    hooks = RunHooks()
    registry = ModelRegistry(settings, hooks.families())
    with TestClient(create_app(settings, registry), raise_server_exceptions=False) as client:
        while client.get("/readyz").status_code != 200:
            time.sleep(0.05)

        def explode(
            original: Callable[[list[NerInputs]], list[NerPrediction]], items: list[NerInputs]
        ) -> list[NerPrediction]:
            if any(item.texts == ["boom"] for item in items):
                raise RuntimeError("simulated ONNX Runtime failure")
            return original(items)

        hooks.set("tiny-ner", explode)
        crashed = client.post("/v1/entities", json={"text": "boom"})
        assert crashed.status_code == 500
        assert crashed.json()["error"] == {
            "type": "internal_error",
            "message": "internal error (RuntimeError)",
        }
        assert client.post("/v1/entities", json={"text": "fine"}).status_code == 200
        assert (
            'infer_failures_total{error="RuntimeError",model="tiny-ner",version="1"}'
            in client.get("/metrics").text
        )
