"""Graph variants at export: ``--optimize``, ``--quantize int8`` and the accuracy gate."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import onnx
import pytest
from onnx import numpy_helper

import export.variants.ship as ship
from export.cli import main
from export.variants.graphs import (
    INT8_SCHEMES,
    exact_integer_reference,
    optimize_graph,
    quantize_int8,
)
from export.variants.sensitivity import rank_sensitive_nodes
from export.variants.static import (
    Calibration,
    collect_activations,
    compute_ranges,
    quantize_static_int8,
    weight_products,
)
from families.classify.runtime import ClassifierPipeline
from families.postures.spec import PostureManifest
from service.bundle import BundleError, read_manifest, verify_bundle
from service.runtime.cpu_features import current_cpu
from service.runtime.session import OnnxSession
from tests.helpers import running_server

VALIDATION = [
    "order 2 masala dosa from saravana bhavan",
    "Priya wants paneer butter masala delivered to Koramangala",
    "ek chai aur do samose bhejo",
]


KEEP = r"layer\.1/output/dense"  # the FFN output projection of the tiny model's 2nd layer


def _ner(checkpoint: Path, out: Path, *extra: str) -> int:
    args = ["ner", "--checkpoint", str(checkpoint / "dir"), "--out", str(out)]
    return main([*args, "--max-length", "16", "--stride", "4", *extra])


def _scramble_classifier_bias(graph: Path) -> None:
    """Large random classifier biases: a rewrite gone wrong that changes the decoded tags."""
    model = onnx.load(str(graph))
    for init in model.graph.initializer:
        if init.name.endswith("classifier.bias"):
            noise = np.random.default_rng(0).normal(0, 20, size=tuple(init.dims))
            init.CopyFrom(numpy_helper.from_array(noise.astype(np.float32), init.name))
    onnx.save(model, str(graph))


def _ops(graph: Path) -> set[str]:
    return {node.op_type for node in onnx.load(str(graph)).graph.node}


def _op_counts(graph: Path) -> Counter[str]:
    return Counter(node.op_type for node in onnx.load(str(graph)).graph.node)


def _int8_weight_products(graph: Path) -> int:
    """DequantizeLinear nodes reading an INT8 weight initializer: one per quantized product."""
    model = onnx.load(str(graph)).graph
    weights = {init.name for init in model.initializer}
    return sum(n.op_type == "DequantizeLinear" and n.input[0] in weights for n in model.node)


@pytest.fixture(scope="module")
def int8_bundles(tiny_checkpoint: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("variant-bundles")
    validation = root.parent / "validation.jsonl"
    validation.write_text("".join(json.dumps({"text": t, "spans": []}) + "\n" for t in VALIDATION))
    extra = ["--quantize", "int8", "--validation", str(validation), "--keep-fp32", KEEP]
    assert _ner(tiny_checkpoint, root / "tiny-int8", *extra) == 0
    static = ["--quantize", "int8-static", "--validation", str(validation)]
    assert _ner(tiny_checkpoint, root / "tiny-int8-static", *static) == 0
    return root


def test_int8_bundle_records_the_variant_and_its_gate(int8_bundles: Path) -> None:
    bundle = int8_bundles / "tiny-int8"
    manifest = verify_bundle(bundle)
    variant = manifest.variant
    assert manifest.schema_version == 3 and variant is not None
    assert variant.quantization == "int8-dynamic" and not variant.optimized
    # The default format is exact on every CPU, so it needs no CPU feature.
    assert variant.int8_format == "u8s8-reduced" and variant.requires_cpu_features == []
    assert variant.validated_on == current_cpu()
    check = manifest.selfcheck
    assert check is not None and check.validated_on == current_cpu()
    # INT8 self-check tolerance: a quarter of the sample's quantization error, above fp32's.
    assert manifest.parity.atol < check.atol < variant.max_abs_diff_vs_fp32
    assert variant.per_channel and variant.kept_fp32 == [KEEP] and variant.kept_fp32_nodes == 1
    assert variant.min_agreement == 0.99 and variant.agreement is not None
    assert variant.agreement >= 0.99
    assert variant.validation_size == 11 + len(VALIDATION)  # parity sample texts + the file
    assert variant.max_abs_diff_vs_fp32 is not None and 0 < variant.max_abs_diff_vs_fp32 < 1
    assert variant.fp32_sha256 != manifest.onnx.sha256  # the shipped graph is the INT8 one
    graph = onnx.load(str(bundle / "model.onnx")).graph
    ops = {n.op_type for n in graph.node}
    assert {"MatMulInteger", "DynamicQuantizeLinear"} <= ops
    kept = [n for n in graph.node if n.op_type == "MatMul" and "layer.1/output/dense" in n.name]
    assert len(kept) == 1  # left fp32, as asked
    assert manifest.parity.max_abs_diff <= manifest.parity.atol  # fp32 gate still ran
    assert sorted(p.name for p in bundle.iterdir()) == [
        "bundle.json",
        "model.onnx",
        "tokenizer.json",
    ]


def test_service_serves_the_int8_bundle_and_shows_the_variant(int8_bundles: Path) -> None:
    with running_server(int8_bundles) as base:
        text = "do samose bhejo"
        answer = httpx.post(
            f"{base}/v1/entities", json={"text": text, "model": "tiny-int8"}, timeout=30
        )
        cards = httpx.get(f"{base}/v1/models", timeout=10).json()["models"]
        metrics = httpx.get(f"{base}/metrics", timeout=10).text
    assert answer.status_code == 200
    body = answer.json()
    assert body["model"]["name"] == "tiny-int8"
    assert all(text[e["start"] : e["end"]] == e["text"] for e in body["results"][0]["entities"])
    variants = {card["name"]: card["variant"] for card in cards}
    assert variants["tiny-int8"]["quantization"] == "int8-dynamic"
    assert variants["tiny-int8"]["agreement"] >= 0.99
    assert variants["tiny-int8-static"]["quantization"] == "int8-static"
    assert variants["tiny-int8-static"]["calibration"]["method"] == "percentile"
    info = [line for line in metrics.splitlines() if line.startswith("infer_model_info{")]
    assert len(info) == 2 and any('quantized="int8-static"' in line for line in info)


def test_plain_bundles_have_no_variant_key(tiny_bundle: Path) -> None:
    assert "variant" not in json.loads((tiny_bundle / "bundle.json").read_text())
    manifest = read_manifest(tiny_bundle)
    assert manifest.schema_version == 3 and manifest.variant is None


@pytest.mark.parametrize("int8_format", list(INT8_SCHEMES))
def test_int8_formats_are_exact_where_they_claim_to_be(
    tiny_bundle: Path, tmp_path: Path, int8_format: str
) -> None:
    """Each format against the same integer products computed by the u8 x u8 kernels (exact on
    every CPU): the portable formats match to the bit on this CPU, whatever it is; full-range
    u8 x s8 matches only where the CPU has a dot-product instruction (VNNI, AMX)."""
    graph, reference = tmp_path / "int8.onnx", tmp_path / "reference.onnx"
    quantize_int8(tiny_bundle / "model.onnx", graph, True, (), int8_format)  # type: ignore[arg-type]
    exact_integer_reference(graph, reference)
    ids = np.random.default_rng(0).integers(1000, 20000, size=(8, 32))
    inputs = {"input_ids": ids, "attention_mask": np.ones_like(ids)}
    inputs["token_type_ids"] = np.zeros_like(ids)
    got = OnnxSession(graph, "emissions", 1).run(inputs)
    exact = OnnxSession(reference, "emissions", 1).run(inputs)
    deviation = float(np.abs(got - exact).max())
    if current_cpu().has_any(list(INT8_SCHEMES[int8_format].requires_any)):
        assert deviation <= 1e-5
    else:  # u8s8 without VNNI: saturated 16-bit sums
        assert deviation > 1e-3


def test_a_variant_in_a_schema_1_manifest_is_rejected(int8_bundles: Path, tmp_path: Path) -> None:
    data = json.loads((int8_bundles / "tiny-int8" / "bundle.json").read_text())
    data["schema_version"] = 1
    (tmp_path / "bundle.json").write_text(json.dumps(data))
    with pytest.raises(BundleError, match="schema_version 2"):
        read_manifest(tmp_path)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--quantize", "int8", "--min-agreement", "1.01"], "--min-agreement 1.01 must be in"),
        (["--quantize", "int8", "--min-agreement", "0"], "--min-agreement 0 must be in"),
        (["--per-tensor"], "--per-tensor, --keep-fp32 and --int8-format only apply with"),
        (["--int8-format", "u8u8"], "--per-tensor, --keep-fp32 and --int8-format only apply"),
        (["--quantize", "int8", "--keep-fp32", "layer.(1"], "not a regular expression"),
        (["--quantize", "int8", "--validation", "/nonexistent.jsonl"], "no such file"),
        (["--calibration", "entropy"], "only apply with --quantize int8-static"),
        (["--quantize", "int8", "--calibration", "minmax"], "only apply with --quantize int8-s"),
        (["--quantize", "int8-static", "--calibration-percentile", "50"], "must be in [90, 100]"),
        (["--fallback-fp32"], "--fallback-fp32 only applies with --quantize"),
    ],
)
def test_invalid_variant_arguments_fail_before_exporting(
    tiny_checkpoint: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    extra: list[str],
    message: str,
) -> None:
    assert _ner(tiny_checkpoint, tmp_path / "bad", *extra) == 1
    assert message in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_a_quantized_graph_that_disagrees_is_refused_and_nothing_is_left(
    tiny_checkpoint: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def broken_quantizer(
        src: Path, dst: Path, per_channel: bool, keep_fp32: tuple[str, ...], fmt: Any, *keep: Any
    ) -> list[str]:
        """The real quantizer, then classifier biases scrambled: a quantization gone wrong."""
        kept = quantize_int8(src, dst, per_channel, keep_fp32, fmt, *keep)
        _scramble_classifier_bias(dst)
        return kept

    monkeypatch.setattr(ship, "quantize_int8", broken_quantizer)
    out = tmp_path / "refused"
    assert _ner(tiny_checkpoint, out, "--quantize", "int8", "--min-agreement", "0.9") == 1
    err = capsys.readouterr().err
    assert "accuracy gate failed" in err and "(required 0.9)" in err and "not written" in err
    assert list(tmp_path.iterdir()) == []  # neither the bundle nor its staging directory


def test_optimize_keeps_fp32_parity(tiny_checkpoint: Path, tmp_path: Path) -> None:
    out = tmp_path / "fused"
    assert _ner(tiny_checkpoint, out, "--optimize", "--atol", "1e-5") == 0
    manifest = verify_bundle(out)
    assert manifest.variant is not None and manifest.variant.optimized
    assert manifest.variant.quantization is None and manifest.variant.agreement is None
    assert manifest.variant.fusions.get("Attention", 0) == 2  # one per layer of the tiny model
    assert manifest.parity.max_abs_diff <= 1e-5 and manifest.parity.tag_agreement == 1.0
    assert "Attention" in _ops(out / "model.onnx")


def test_fusions_that_break_parity_are_skipped_with_a_message(
    tiny_checkpoint: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def breaking_optimizer(src: Path, dst: Path, *args: Any) -> dict[str, int]:
        fusions = optimize_graph(src, dst, *args)
        _scramble_classifier_bias(dst)
        return fusions

    monkeypatch.setattr(ship, "optimize_graph", breaking_optimizer)
    out = tmp_path / "unfused"
    assert _ner(tiny_checkpoint, out, "--optimize") == 0
    assert "skipping --optimize" in capsys.readouterr().err
    manifest = verify_bundle(out)
    assert manifest.variant is not None and not manifest.variant.optimized
    assert manifest.variant.optimizer is not None
    assert manifest.variant.optimizer.startswith("skipped: the fused graph failed parity")
    assert manifest.variant.fusions == {} and "Attention" not in _ops(out / "model.onnx")
    assert manifest.parity.max_abs_diff <= manifest.parity.atol


def test_optimized_int8_longformer_passes_both_gates_and_serves(
    tiny_longformer: Path, tmp_path: Path
) -> None:
    out = tmp_path / "postures-int8"
    args = ["postures", "--checkpoint", str(tiny_longformer / "dir"), "--out", str(out)]
    options = ["--max-length", "600", "--parity-lengths", "1,513", "--optimize", "--quantize"]
    assert main([*args, *options, "int8"]) == 0
    manifest = verify_bundle(out)
    assert isinstance(manifest, PostureManifest) and manifest.variant is not None
    variant = manifest.variant
    assert variant.optimized and "Attention" not in variant.fusions  # generic fusions only
    assert variant.fusions.get("LayerNormalization", 0) > 0
    assert manifest.parity.max_abs_diff <= manifest.parity.atol  # on the fused fp32 graph
    assert variant.quantization == "int8-dynamic" and variant.validation_size == 2
    assert variant.agreement is not None and variant.agreement >= 0.99
    ops = _ops(out / "model.onnx")
    assert "Gemm" not in ops and "MatMulInteger" in ops  # the linear layers were quantized too
    session = OnnxSession(out / "model.onnx", manifest.onnx.output, 1)
    probs = ClassifierPipeline(manifest, out, session).probabilities(["a short motion to dismiss"])
    assert probs.probabilities.shape == (1, len(manifest.labels))


def test_sensitive_products_stay_fp32_until_the_gate_passes(
    tiny_checkpoint: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A quantization that is wrong unless some product stays fp32: the search finds one, the
    bundle ships with it fp32 and says so."""

    def wrong_unless_one_is_kept(
        src: Path, dst: Path, per_channel: bool, keep_fp32: Any, fmt: Any, keep: Any = ()
    ) -> list[str]:
        kept = quantize_int8(src, dst, per_channel, keep_fp32, fmt, keep)
        if not keep:
            _scramble_classifier_bias(dst)
        return kept

    monkeypatch.setattr(ship, "quantize_int8", wrong_unless_one_is_kept)
    out = tmp_path / "searched"
    assert _ner(tiny_checkpoint, out, "--quantize", "int8") == 0
    err = capsys.readouterr().err
    assert "the whole graph fails the gate" in err and "1 of " in err
    manifest = verify_bundle(out)
    variant = manifest.variant
    assert variant is not None and variant.agreement is not None and variant.agreement >= 0.99
    assert len(variant.kept_fp32_sensitive) == 1 and variant.kept_fp32_nodes == 1
    graph = onnx.load(str(out / "model.onnx")).graph
    kept = [n for n in graph.node if n.name == variant.kept_fp32_sensitive[0]]
    assert len(kept) == 1 and kept[0].op_type == "MatMul"  # left fp32 in the shipped graph


def test_without_the_search_a_failing_graph_is_refused_at_once(
    tiny_checkpoint: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls = []

    def broken(src: Path, dst: Path, *args: Any) -> list[str]:
        calls.append(args)
        kept = quantize_int8(src, dst, *args)
        _scramble_classifier_bias(dst)
        return kept

    monkeypatch.setattr(ship, "quantize_int8", broken)
    args = ("--quantize", "int8", "--no-keep-sensitive")
    assert _ner(tiny_checkpoint, tmp_path / "refused", *args) == 1
    assert "accuracy gate failed" in capsys.readouterr().err and len(calls) == 1
    assert list(tmp_path.iterdir()) == []


def test_the_product_with_an_outlier_weight_ranks_most_sensitive(
    tiny_bundle: Path, tmp_path: Path
) -> None:
    """With one scale per tensor, a single huge weight zeroes the rest of its matrix."""
    model = onnx.load(str(tiny_bundle / "model.onnx"))
    target = next(
        n for n in model.graph.node if n.op_type == "MatMul" and "layer.0/intermediate" in n.name
    )
    weight = next(i for i in model.graph.initializer if i.name == target.input[1])
    values = numpy_helper.to_array(weight).copy()
    values[0, 0] = 1000 * np.abs(values).max()
    weight.CopyFrom(numpy_helper.from_array(values, weight.name))
    graph = tmp_path / "outlier.onnx"
    onnx.save(model, str(graph))
    ids = np.random.default_rng(0).integers(1000, 20000, size=(2, 12))
    feeds = [{"input_ids": ids, "attention_mask": np.ones_like(ids)}]
    feeds[0]["token_type_ids"] = np.zeros_like(ids)
    ranking = rank_sensitive_nodes(graph, feeds, False, "u8s8-reduced")
    assert ranking[0][0] == target.name and ranking[0][1] > 0.5
    assert ranking[-1][1] < 0.1
    assert len(ranking) == len({name for name, _ in ranking}) > 10  # every weight product


def _random_feed(rows: int, width: int, seed: int = 0) -> dict[str, np.ndarray]:
    ids = np.random.default_rng(seed).integers(1000, 20000, size=(rows, width))
    return {"input_ids": ids, "attention_mask": np.ones_like(ids), "token_type_ids": 0 * ids}


@pytest.mark.parametrize("int8_format", list(INT8_SCHEMES))
def test_static_int8_formats_are_exact_where_they_claim_to_be(
    tiny_bundle: Path, tmp_path: Path, int8_format: str
) -> None:
    """The static QDQ graph (fused by ONNX Runtime into integer products) obeys the same rule
    as dynamic INT8: portable formats equal the exact u8 x u8 reference to the bit here."""
    source = tiny_bundle / "model.onnx"
    ranges = compute_ranges(
        collect_activations(source, [_random_feed(1, 12, s) for s in range(4)]),
        Calibration("minmax"),
    )
    graph, reference = tmp_path / "static.onnx", tmp_path / "reference.onnx"
    quantize_static_int8(source, graph, ranges, True, int8_format)  # type: ignore[arg-type]
    rewritten = exact_integer_reference(graph, reference)
    products = len(weight_products(onnx.load(str(source))))
    assert rewritten == (0 if int8_format == "u8u8" else products)  # every s8 weight moved
    inputs = _random_feed(8, 32, 9)
    got = OnnxSession(graph, "emissions", 1).run(inputs)
    exact = OnnxSession(reference, "emissions", 1).run(inputs)
    deviation = float(np.abs(got - exact).max())
    if current_cpu().has_any(list(INT8_SCHEMES[int8_format].requires_any)):
        assert deviation <= 1e-5
    else:  # u8s8 without VNNI: saturated 16-bit sums
        assert deviation > 1e-3


def test_static_int8_bundle_records_its_calibration(int8_bundles: Path) -> None:
    bundle = int8_bundles / "tiny-int8-static"
    manifest = verify_bundle(bundle)
    variant = manifest.variant
    assert manifest.schema_version == 4 and variant is not None
    assert variant.quantization == "int8-static" and variant.int8_format == "u8s8-reduced"
    calibration = variant.calibration
    assert calibration is not None and calibration.method == "percentile"
    assert calibration.percentile == 99.99 and calibration.texts == len(VALIDATION)
    assert calibration.tokens >= len(VALIDATION) * 5 and calibration.source == "--validation texts"
    assert variant.agreement is not None and variant.agreement >= 0.99
    ops = _ops(bundle / "model.onnx")
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops and "DynamicQuantizeLinear" not in ops


def _alone_and_batched(session: OnnxSession, text_rows: list[np.ndarray]) -> tuple[Any, Any]:
    """Row 0 alone, and inside a batch of 32 padded to the longest row."""
    from service.text.inputs import build_inputs

    alone = session.run(build_inputs(text_rows[:1], [101], [102], 0))
    batched = session.run(build_inputs(text_rows, [101], [102], 0))
    n = len(text_rows[0]) + 2
    return alone[0, :n], batched[0, :n]


def test_static_int8_answers_ignore_batch_mates_and_dynamic_ones_do_not(
    int8_bundles: Path,
) -> None:
    """A text alone vs inside a batch of 32 longer texts: the static graph's scores are the same
    up to fp32 rounding (fixed activation scales), the dynamic graph's move by a quantization
    step (its scales come from the whole batch)."""
    rng = np.random.default_rng(3)
    rows = [rng.integers(1000, 20000, size=6)]
    rows += [rng.integers(1000, 20000, size=int(n)) for n in rng.integers(4, 14, size=31)]
    static = OnnxSession(int8_bundles / "tiny-int8-static" / "model.onnx", "emissions", 1)
    dynamic = OnnxSession(int8_bundles / "tiny-int8" / "model.onnx", "emissions", 1)
    alone, batched = _alone_and_batched(static, rows)
    assert np.abs(alone - batched).max() <= 1e-4
    alone, batched = _alone_and_batched(dynamic, rows)
    assert np.abs(alone - batched).max() > 1e-3


def test_static_int8_entities_are_the_same_alone_and_in_a_batch_of_32(int8_bundles: Path) -> None:
    texts = [
        "order 2 masala dosa from saravana bhavan",
        "Priya wants paneer butter masala delivered to Koramangala at 8 pm tonight please",
        "ek chai aur do samose bhejo",
        "Sud u Beogradu je odbio žalbu",
    ] * 8
    with running_server(int8_bundles) as base:

        def entities(batch: list[str]) -> list[Any]:
            body = {"texts": batch, "model": "tiny-int8-static"}
            answer = httpx.post(f"{base}/v1/entities", json=body, timeout=60)
            assert answer.status_code == 200
            return [r["entities"] for r in answer.json()["results"]]

        batched = entities(texts)
        alone = [entities([t])[0] for t in texts[:4]]
    assert len(batched) == 32 and batched[:4] == alone


def test_a_refused_quantization_ships_fp32_with_the_reason_when_asked(
    tiny_checkpoint: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def broken(src: Path, dst: Path, *args: Any, **kwargs: Any) -> list[str]:
        kept = quantize_static_int8(src, dst, *args, **kwargs)
        _scramble_classifier_bias(dst)
        return kept

    monkeypatch.setattr(ship, "quantize_static_int8", broken)
    out = tmp_path / "fallback"
    args = ("--quantize", "int8-static", "--no-keep-sensitive", "--fallback-fp32")
    assert _ner(tiny_checkpoint, out, *args) == 0
    manifest = verify_bundle(out)
    variant = manifest.variant
    assert manifest.schema_version == 4 and variant is not None
    assert variant.quantization is None and variant.quantization_refused is not None
    assert variant.quantization_refused.startswith("accuracy gate failed")
    assert "(required 0.99)" in variant.quantization_refused
    ops = _ops(out / "model.onnx")
    assert "QuantizeLinear" not in ops and "MatMulInteger" not in ops  # the fp32 graph ships
    assert sorted(p.name for p in out.iterdir()) == ["bundle.json", "model.onnx", "tokenizer.json"]


def test_the_static_search_keeps_sensitive_products_fp32(
    tiny_checkpoint: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def wrong_unless_one_is_kept(
        src: Path, dst: Path, ranges: Any, per_channel: bool, fmt: Any, keep: Any = ()
    ) -> list[str]:
        kept = quantize_static_int8(src, dst, ranges, per_channel, fmt, keep)
        if not keep:
            _scramble_classifier_bias(dst)
        return kept

    monkeypatch.setattr(ship, "quantize_static_int8", wrong_unless_one_is_kept)
    out = tmp_path / "static-searched"
    assert _ner(tiny_checkpoint, out, "--quantize", "int8-static") == 0
    assert "the whole graph fails the gate" in capsys.readouterr().err
    variant = verify_bundle(out).variant
    assert variant is not None and variant.quantization == "int8-static"
    assert len(variant.kept_fp32_sensitive) == 1 and variant.kept_fp32_nodes == 1
    assert variant.calibration is not None and variant.calibration.source.startswith("the self")
    graph = onnx.load(str(out / "model.onnx")).graph
    kept = [n for n in graph.node if n.name == variant.kept_fp32_sensitive[0]]
    assert kept[0].op_type == "MatMul" and not kept[0].input[1].endswith(".dq")  # fp32 weight


@pytest.fixture(scope="module")
def static_longformer(tiny_longformer: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny Longformer exported once as a static INT8 posture bundle."""
    out = tmp_path_factory.mktemp("postures-static") / "bundle"
    args = ["postures", "--checkpoint", str(tiny_longformer / "dir"), "--out", str(out)]
    options = ["--max-length", "600", "--parity-lengths", "1,513", "--quantize", "int8-static"]
    assert main([*args, *options]) == 0
    return out


def test_static_int8_longformer_passes_both_gates(static_longformer: Path) -> None:
    out = static_longformer
    manifest = verify_bundle(out)
    assert isinstance(manifest, PostureManifest) and manifest.variant is not None
    variant = manifest.variant
    assert variant.quantization == "int8-static" and variant.calibration is not None
    assert variant.agreement is not None and variant.agreement >= 0.99
    ops = _ops(out / "model.onnx")
    assert "Gemm" not in ops and {"QuantizeLinear", "DequantizeLinear"} <= ops
    session = OnnxSession(out / "model.onnx", manifest.onnx.output, 1)
    probs = ClassifierPipeline(manifest, out, session).probabilities(["a short motion to dismiss"])
    assert probs.probabilities.shape == (1, len(manifest.labels))


def test_static_int8_longformer_runs_integer_kernels_in_the_service(
    static_longformer: Path, tmp_path: Path
) -> None:
    """Under the service's session options every weight product of the static graph becomes
    MatMulIntegerToFloat; with ONNX Runtime's MatMul + Add -> Gemm rewrite the 2-D products
    stayed fp32 Gemms behind quantize/dequantize pairs (slower than fp32)."""
    import onnxruntime as ort

    from service.runtime.session import DISABLED_OPTIMIZERS

    out = static_longformer
    products = _int8_weight_products(out / "model.onnx")
    session_options = ort.SessionOptions()
    session_options.optimized_model_filepath = str(tmp_path / "optimized.onnx")
    ort.InferenceSession(
        str(out / "model.onnx"),
        session_options,
        ["CPUExecutionProvider"],
        disabled_optimizers=DISABLED_OPTIMIZERS,
    )
    optimized = _op_counts(tmp_path / "optimized.onnx")
    assert optimized["MatMulIntegerToFloat"] == products > 0
    assert optimized["Gemm"] == 0 and optimized["DequantizeLinear"] == 0


@pytest.mark.parametrize(("f1_int8", "ships_int8"), [(0.846, True), (0.844, False)])
def test_the_default_build_ships_int8_only_within_half_a_point_of_fp32(
    int8_bundles: Path, tiny_bundle: Path, tmp_path: Path, f1_int8: float, ships_int8: bool
) -> None:
    """The held-out half of the gate: test metric within 0.5 point, else fp32 with the reason."""
    import shutil

    from default_models.int8_gate import ship_int8_if_gated

    fp32, int8 = tmp_path / "fp32", tmp_path / "int8"
    shutil.copytree(tiny_bundle, fp32)
    shutil.copytree(int8_bundles / "tiny-int8-static", int8)
    scores = {fp32: 0.850, int8: f1_int8}
    chosen, figures = ship_int8_if_gated(fp32, int8, scores.__getitem__, "entity micro-F1")
    assert chosen == (int8 if ships_int8 else fp32)
    variant = verify_bundle(chosen).variant
    assert variant is not None
    if ships_int8:
        assert variant.quantization == "int8-static" and figures["shipped"] == "int8-static"
    else:
        assert variant.quantization is None and figures["shipped"] == "fp32"
        reason = variant.quantization_refused
        assert reason is not None and "entity micro-F1 0.8440 vs fp32 0.8500" in reason
        assert read_manifest(chosen).schema_version == 4
