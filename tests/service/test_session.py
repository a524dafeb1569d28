"""Execution providers from settings: unknown ones skipped, CPU always the fallback."""

from __future__ import annotations

from pathlib import Path

import onnxruntime as ort

from service.bundle import read_manifest
from service.runtime.session import OnnxSession, usable_providers
from service.settings import Settings


def test_providers_are_filtered_by_what_onnxruntime_has() -> None:
    assert "NoSuchExecutionProvider" not in ort.get_available_providers()
    assert usable_providers(["NoSuchExecutionProvider"]) == ["CPUExecutionProvider"]
    assert usable_providers(["CPUExecutionProvider", "NoSuchExecutionProvider"]) == [
        "CPUExecutionProvider"
    ]
    if "CUDAExecutionProvider" not in ort.get_available_providers():
        assert usable_providers(
            Settings.model_fields["providers"].get_default(call_default_factory=True)
        ) == ["CPUExecutionProvider"]


def test_settings_providers_reach_the_session(tiny_bundle: Path, monkeypatch) -> None:
    monkeypatch.setenv("INFER_PROVIDERS", '["NoSuchExecutionProvider", "CPUExecutionProvider"]')
    settings = Settings(bundles_dir=tiny_bundle.parent)
    assert settings.providers == ["NoSuchExecutionProvider", "CPUExecutionProvider"]
    manifest = read_manifest(tiny_bundle)
    session = OnnxSession(
        tiny_bundle / manifest.onnx.file, manifest.onnx.output, 1, settings.providers
    )
    assert session.provider == "CPUExecutionProvider"
