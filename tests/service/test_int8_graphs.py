"""Bundles with several INT8 graphs: the manifest, which graph the service serves on which CPU
(flags injected, whatever CPU runs the suite), and the fallback when a graph's self-check fails."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from export.cli import main
from service.app import create_app
from service.bundle import BundleError, read_manifest, read_onnx_manifest, verify_bundle
from service.registry import ModelRegistry
from service.runtime import loader
from service.runtime.cpu_features import INT8_DOT_PRODUCT, CpuInfo
from service.runtime.graph_choice import order_graphs
from service.settings import Settings

AVX2 = CpuInfo(model="AMD EPYC", flags=["avx2"])
AVX512_NO_VNNI = CpuInfo(model="Intel Xeon Skylake", flags=["avx2", "avx512f", "avx512bw"])
VNNI = CpuInfo(model="AMD EPYC", flags=["avx2", "avx512f", "avx512_vnni"])
AVX_VNNI = CpuInfo(model="Intel Core", flags=["avx2", "avx_vnni"])
AMX = CpuInfo(model="Intel Xeon Sapphire Rapids", flags=["avx2", "amx_int8"])


def _export(checkpoint: Path, out: Path, *extra: str) -> None:
    args = ["ner", "--checkpoint", str(checkpoint / "dir"), "--out", str(out)]
    args += ["--max-length", "16", "--stride", "4", "--quantize", "int8-static"]
    assert main([*args, "--min-agreement", "0.5", *extra]) == 0


@pytest.fixture(scope="module")
def two_graphs(tiny_checkpoint: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """model.onnx (u8s8-reduced) + model.int8-u8u8.onnx: both exact on every CPU, so the bundle
    loads the same way wherever the suite runs; tests relabel the second as u8s8 when they need
    a graph that asks for VNNI/AMX (the relabelled graph still passes its own sample here)."""
    out = tmp_path_factory.mktemp("int8-graphs") / "tiny-two"
    _export(tiny_checkpoint, out, "--int8-also", "u8u8")
    return out


def _copy(bundle: Path, root: Path, edit: object = None) -> Path:
    target = root / "bundles" / bundle.name
    shutil.copytree(bundle, target)
    if edit is not None:
        path = target / "bundle.json"
        data = json.loads(path.read_text())
        edit(data)  # type: ignore[operator]
        path.write_text(json.dumps(data))
    return target


def _as_u8s8(data: dict) -> None:  # type: ignore[type-arg]
    data["int8_graphs"][0]["int8_format"] = "u8s8"
    data["int8_graphs"][0]["requires_cpu_features"] = list(INT8_DOT_PRODUCT)


def _registry(
    bundles: Path, monkeypatch: pytest.MonkeyPatch, cpu: CpuInfo, **env: str
) -> ModelRegistry:
    monkeypatch.setattr(loader, "current_cpu", lambda: cpu)
    registry = ModelRegistry(Settings(bundles_dir=bundles, **env))  # type: ignore[arg-type]
    registry.discover()
    registry.load()
    return registry


def test_a_second_graph_needs_schema_6_and_its_file_is_verified(
    two_graphs: Path, tmp_path: Path
) -> None:
    old = _copy(two_graphs, tmp_path / "old", lambda d: d.update(schema_version=5))
    with pytest.raises(BundleError, match="schema_version 6"):
        read_manifest(old)
    corrupt = _copy(two_graphs, tmp_path / "corrupt")
    (corrupt / "model.int8-u8u8.onnx").write_bytes(b"not a graph")
    with pytest.raises(BundleError, match="sha256"):
        verify_bundle(corrupt)
    same = _copy(two_graphs, tmp_path / "same")
    data = json.loads((same / "bundle.json").read_text())
    data["int8_graphs"][0]["file"] = "model.onnx"
    (same / "bundle.json").write_text(json.dumps(data))
    with pytest.raises(BundleError, match=r"other than onnx\.file"):
        read_manifest(same)


@pytest.mark.parametrize(
    ("cpu", "served"),
    [
        (VNNI, "u8s8"),
        (AVX_VNNI, "u8s8"),
        (AMX, "u8s8"),
        (AVX2, "u8s8-reduced"),
        (AVX512_NO_VNNI, "u8s8-reduced"),
    ],
)
def test_the_choice_follows_the_cpu_flags(
    two_graphs: Path, tmp_path: Path, cpu: CpuInfo, served: str
) -> None:
    manifest = read_onnx_manifest(_copy(two_graphs, tmp_path, _as_u8s8))
    order, passed_over, reason = order_graphs(manifest, cpu)
    assert order[0].int8_format == served
    if served == "u8s8":
        assert [g.int8_format for g in order] == ["u8s8", "u8s8-reduced"]
        assert "this CPU has" in reason and not passed_over
    else:
        assert [g.int8_format for g in order] == ["u8s8-reduced"]
        assert "avx512_vnni" in passed_over[0] and "u8s8" in passed_over[0]


def test_a_forced_format_comes_first_only_where_the_cpu_computes_it(
    two_graphs: Path, tmp_path: Path
) -> None:
    manifest = read_onnx_manifest(_copy(two_graphs, tmp_path, _as_u8s8))
    order, _, reason = order_graphs(manifest, VNNI, "u8s8-reduced")
    assert [g.int8_format for g in order] == ["u8s8-reduced", "u8s8"]
    assert reason == "INFER_INT8_FORMAT=u8s8-reduced"
    order, _, reason = order_graphs(manifest, AVX2, "u8s8")  # never a graph this CPU saturates
    assert [g.int8_format for g in order] == ["u8s8-reduced"]
    assert "INFER_INT8_FORMAT=u8s8 is not exact on this CPU" in reason


def test_the_service_serves_and_reports_the_graph_for_its_cpu(
    two_graphs: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bundles = _copy(two_graphs, tmp_path, _as_u8s8).parent
    for cpu, file in ((VNNI, "model.int8-u8u8.onnx"), (AVX2, "model.onnx")):
        registry = _registry(bundles, monkeypatch, cpu)
        assert registry.ready, registry.load_error
        model = registry.models["tiny-two"]
        assert model.graph is not None and model.graph.chosen.file == file
        registry.close()
    monkeypatch.setattr(loader, "current_cpu", lambda: VNNI)
    app = create_app(Settings(bundles_dir=bundles))
    with TestClient(app) as client:
        deadline = time.monotonic() + 60
        while client.get("/readyz").status_code == 503 and time.monotonic() < deadline:
            time.sleep(0.05)
        card = client.get("/v1/models").json()["models"][0]
        assert card["graph"]["int8_format"] == "u8s8"
        assert card["graph"]["file"] == "model.int8-u8u8.onnx"  # relabelled u8s8
        assert "avx512_vnni" in card["graph"]["reason"]
        metrics = client.get("/metrics").text
        sha = read_onnx_manifest(bundles / "tiny-two").int8_graphs[0].sha256[:12]
        assert f'sha256="{sha}"' in metrics


def test_a_failing_self_check_falls_back_to_the_next_graph(
    two_graphs: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    def broken_u8s8(data: dict) -> None:  # type: ignore[type-arg]
        _as_u8s8(data)
        outputs = data["int8_graphs"][0]["selfcheck"]["outputs"]
        outputs[0][0][0] += 1000.0

    bundles = _copy(two_graphs, tmp_path, broken_u8s8).parent
    registry = _registry(bundles, monkeypatch, VNNI)
    assert registry.ready, registry.load_error
    graph = registry.models["tiny-two"].graph
    assert graph is not None and graph.chosen.file == "model.onnx"
    assert "failed self-check" in graph.reason
    assert (
        "model.int8-u8u8.onnx" in graph.passed_over[0]
        and "self-check failed" in graph.passed_over[0]
    )
    assert "trying the bundle's next graph" in caplog.text
    registry.close()


def test_no_graph_passing_its_self_check_keeps_the_model_unready(
    two_graphs: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def all_broken(data: dict) -> None:  # type: ignore[type-arg]
        data["int8_graphs"][0]["selfcheck"]["outputs"][0][0][0] += 1000.0
        data["selfcheck"]["outputs"][0][0][0] += 1000.0

    registry = _registry(_copy(two_graphs, tmp_path, all_broken).parent, monkeypatch, VNNI)
    assert not registry.ready and registry.load_error is not None
    assert "model.int8-u8u8.onnx" in registry.load_error and "model.onnx" in registry.load_error
