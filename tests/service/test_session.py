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


def test_intra_op_spinning_is_a_setting_off_by_default(tiny_bundle: Path, monkeypatch) -> None:
    manifest = read_manifest(tiny_bundle)
    graph, output = tiny_bundle / manifest.onnx.file, manifest.onnx.output
    key = "session.intra_op.allow_spinning"
    monkeypatch.delenv("INFER_INTRA_OP_SPINNING", raising=False)
    default = Settings(bundles_dir=tiny_bundle.parent)
    assert default.intra_op_spinning is False
    monkeypatch.setenv("INFER_INTRA_OP_SPINNING", "true")
    spinning = Settings(bundles_dir=tiny_bundle.parent)
    assert spinning.intra_op_spinning is True
    for settings, expected in ((default, "0"), (spinning, "1")):
        session = OnnxSession(graph, output, 1, spinning=settings.intra_op_spinning)
        options = session._session.get_session_options()
        assert options.get_session_config_entry(key) == expected
