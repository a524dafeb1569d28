"""``--int8-also``: one export ships INT8 graphs in several formats, each through the same gate
with its own self-check sample and sha256; single-graph bundles are written as before; the default
builds' held-out gate scores each graph on its own."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from export.cli import main
from service.bundle import read_onnx_manifest, verify_bundle
from service.runtime.cpu_features import INT8_DOT_PRODUCT, current_cpu


def _export(checkpoint: Path, out: Path, *extra: str) -> None:
    args = ["ner", "--checkpoint", str(checkpoint / "dir"), "--out", str(out)]
    args += ["--max-length", "16", "--stride", "4", "--quantize", "int8-static"]
    assert main([*args, "--min-agreement", "0.5", *extra]) == 0


def test_the_export_ships_each_format_with_its_own_gate_sample_and_sha(
    tiny_checkpoint: Path, tmp_path: Path
) -> None:
    out = tmp_path / "tiny-formats"
    _export(tiny_checkpoint, out, "--int8-also", "u8s8", "--int8-also", "u8u8")
    manifest = read_onnx_manifest(out)
    verify_bundle(out)  # every graph's sha256 checked
    assert manifest.schema_version == 6
    assert manifest.variant is not None and manifest.variant.int8_format == "u8s8-reduced"
    formats = {g.int8_format: g for g in manifest.int8_graphs}
    dot = current_cpu().has_any(list(INT8_DOT_PRODUCT))
    # u8s8 is only validated where the exporting CPU computes it exactly (VNNI/AMX)
    assert set(formats) == ({"u8u8", "u8s8"} if dot else {"u8u8"})
    if not dot:
        assert "not validated" in manifest.variant.int8_formats_refused["u8s8"]
    for fmt, graph in formats.items():
        assert graph.file == f"model.int8-{fmt}.onnx" and (out / graph.file).is_file()
        assert graph.sha256 != manifest.onnx.sha256
        assert graph.agreement >= graph.min_agreement == 0.5
        assert graph.kept_fp32_nodes >= 0 and graph.validation_size > 0
        assert graph.selfcheck.outputs != manifest.selfcheck.outputs  # type: ignore[union-attr]
        assert graph.validated_on == current_cpu()


def test_single_graph_bundles_are_written_and_read_as_before(
    tiny_checkpoint: Path, tmp_path: Path
) -> None:
    out = tmp_path / "tiny-one"
    _export(tiny_checkpoint, out)
    data = json.loads((out / "bundle.json").read_text())
    assert "int8_graphs" not in data and "int8_formats_refused" not in data["variant"]
    assert data["schema_version"] == 4  # unchanged: older services keep loading it
    assert read_onnx_manifest(out).int8_graphs == []


@pytest.mark.parametrize(("f1_u8u8", "kept"), [(0.846, True), (0.844, False)])
def test_the_held_out_gate_scores_and_drops_each_extra_graph_on_its_own(
    tiny_checkpoint: Path, tiny_bundle: Path, tmp_path: Path, f1_u8u8: float, kept: bool
) -> None:
    from default_models.int8_gate import ship_int8_if_gated

    fp32, int8 = tmp_path / "fp32", tmp_path / "int8"
    shutil.copytree(tiny_bundle, fp32)
    _export(tiny_checkpoint, int8, "--int8-also", "u8u8")

    def score(bundle: Path) -> float:  # the graph the loader would serve is the forced one
        served = os.environ.get("INFER_INT8_FORMAT", "auto")
        return 0.850 if bundle == fp32 else {"u8u8": f1_u8u8}.get(served, 0.849)

    chosen, figures = ship_int8_if_gated(fp32, int8, score, "entity micro-F1")
    assert chosen == int8 and figures["test_int8"] == 0.849  # the primary, scored as itself
    formats = figures["formats"]
    assert isinstance(formats, dict) and formats["u8u8"]["test_int8"] == f1_u8u8
    manifest = read_onnx_manifest(int8)
    verify_bundle(int8)
    assert [g.int8_format for g in manifest.int8_graphs] == (["u8u8"] if kept else [])
    assert (int8 / "model.int8-u8u8.onnx").exists() == kept
    if not kept:
        assert manifest.variant is not None
        assert "0.8440 vs fp32 0.8500" in manifest.variant.int8_formats_refused["u8u8"]
    assert "INFER_INT8_FORMAT" not in os.environ
