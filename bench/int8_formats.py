"""INT8 formats side by side on this CPU: gate agreement with fp32 and raw ORT latency.

``python -m bench.int8_formats --bundle DIR [--bundle DIR ...]`` quantizes each fp32 NER bundle's
graph once per INT8 format (``export.variants.schemes.INT8_SCHEMES``), runs the export's own
accuracy gate (served Viterbi tags, worst of batch 1 and 32) against the fp32 graph on the food
corpus dev utterances, and times single calls at 1 x 16 and 32 x 32 tokens, formats interleaved.
Static INT8 rows (``--quantize int8-static``'s graph, percentile 99.99 ranges calibrated on the
same texts) follow, whole and with ``--static-keep`` products fp32.
Prints the CPU model and ISA flags first: both columns depend on them (VNNI or not).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.variants import SHAPES, _inputs
from default_models.food_corpus import generate_splits
from export.selfcheck import SampleSpec
from export.variants.gate import ner_agreement
from export.variants.graphs import (
    exact_integer_reference,
    matching_nodes,
    quantize_int8,
)
from export.variants.schemes import INT8_SCHEMES
from export.variants.static import (
    Calibration,
    collect_activations,
    compute_ranges,
    quantize_static_int8,
)
from families.ner.decoding import WordDecoder
from families.ner.parity import SAMPLE_TEXTS
from families.ner.spec import NerManifest
from service.bundle import read_manifest
from service.runtime.cpu_features import current_cpu
from service.runtime.cpus import available_cpus
from service.runtime.session import OnnxSession
from service.text.tokenizer import TextTokenizer


def _decoder(manifest: NerManifest) -> WordDecoder:
    """The served decoder (CRF or softmax head, the bundle's tag scheme)."""
    return WordDecoder.from_spec(manifest.ner, manifest.labels)


def _timings(sessions: dict[str, OnnxSession], repeats: int) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, list[float]]] = {name: {} for name in sessions}
    for batch, tokens in SHAPES:
        shape, inputs = f"{batch}x{tokens}", _inputs(batch, tokens)
        for session in sessions.values():
            session.run(inputs)
        for _ in range(repeats if batch * tokens <= 64 else max(3, repeats // 4)):
            for name, session in sessions.items():
                began = time.perf_counter()
                session.run(inputs)
                out[name].setdefault(shape, []).append(1e3 * (time.perf_counter() - began))
    return {n: {s: statistics.median(v) for s, v in by.items()} for n, by in out.items()}


def _graphs(
    source: Path, tmp: Path, texts: list[str], manifest: NerManifest, static_keep: tuple[str, ...]
) -> dict[str, Path]:
    """Every dynamic format, then static INT8 (percentile ranges calibrated on ``texts``, each
    run alone) in the portable formats, whole and with ``static_keep`` products fp32."""
    graphs = {}
    for name in INT8_SCHEMES:
        graphs[name] = tmp / f"{name}.onnx"
        quantize_int8(source, graphs[name], True, (), name)  # type: ignore[arg-type]
    sample = SampleSpec(
        source.parent / manifest.tokenizer.file,
        manifest.onnx.output,
        manifest.tokenizer.max_length,
        manifest.tokenizer.pad_token_id,
    )
    ranges = compute_ranges(collect_activations(source, sample.feeds(texts)), Calibration())
    keep = matching_nodes(source, static_keep)
    for fmt in ("u8s8-reduced", "u8u8"):
        for label, nodes in (("", []), (f", {len(keep)} kept fp32", keep)):
            if label and not keep:
                continue
            name = f"static {fmt}{label}"
            graphs[name] = tmp / f"static-{fmt}-{len(nodes)}.onnx"
            quantize_static_int8(source, graphs[name], ranges, True, fmt, nodes)
    return graphs


def compare(
    bundle: Path, texts: list[str], repeats: int, static_keep: tuple[str, ...] = ()
) -> None:
    manifest = read_manifest(bundle)
    assert isinstance(manifest, NerManifest), f"{bundle}: not a NER bundle"
    tokenizer = TextTokenizer(bundle / manifest.tokenizer.file)
    capacity = manifest.tokenizer.max_length - tokenizer.num_special_tokens
    threads = available_cpus()
    fp32 = OnnxSession(bundle / manifest.onnx.file, manifest.onnx.output, threads)
    sessions = {"fp32": fp32}
    rows = {}
    deviation: dict[str, float] = {}  # vs exact integer arithmetic (what VNNI computes)
    with tempfile.TemporaryDirectory() as tmp:
        source = bundle / manifest.onnx.file
        for name, graph in _graphs(source, Path(tmp), texts, manifest, static_keep).items():
            sessions[name] = OnnxSession(graph, manifest.onnx.output, threads)
            reference = graph.with_suffix(".exact.onnx")
            exact_integer_reference(graph, reference)
            probe = _inputs(8, 32)
            exact = OnnxSession(reference, manifest.onnx.output, threads).run(probe)
            deviation[name] = float(np.abs(sessions[name].run(probe) - exact).max())
            rows[name] = ner_agreement(
                fp32,
                sessions[name],
                tokenizer,
                _decoder(manifest),
                texts,
                capacity,
                manifest.tokenizer.pad_token_id,
            )
        latency = _timings(sessions, repeats)
    shapes = [f"{b}x{t}" for b, t in SHAPES]
    print(f"\n### {manifest.name} ({bundle}), {len(texts)} texts, ORT threads {threads}\n")
    print(
        "| format | exact on | max abs vs exact integer sums here | word agreement (gate) "
        "| texts identical | max abs vs fp32 | " + " | ".join(f"{s} ms" for s in shapes) + " |"
    )
    print("|---" * (6 + len(shapes)) + "|")
    base = latency["fp32"]
    print(
        "| fp32 | every CPU | – | 1 | 1 | 0 | "
        + " | ".join(f"{base[s]:.1f}" for s in shapes)
        + " |"
    )
    for name, agreement in rows.items():
        scheme = INT8_SCHEMES[name.removeprefix("static ").split(",")[0]]
        exact_on = " or ".join(scheme.requires_any) or "every CPU"
        cells = [f"{latency[name][s]:.1f} ({base[s] / latency[name][s]:.2f}x)" for s in shapes]
        print(
            f"| {name} | {exact_on} | {deviation[name]:.3g} | {agreement.agreement:.4f} "
            f"| {agreement.exact_match:.4f} "
            f"| {agreement.max_abs_diff:.3g} | " + " | ".join(cells) + " |"
        )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bundle", type=Path, action="append", required=True)
    parser.add_argument("--texts", type=int, default=300, help="food-corpus dev utterances")
    parser.add_argument("--repeats", type=int, default=20, help="timed rounds at 1x16")
    parser.add_argument(
        "--static-keep",
        action="append",
        default=[],
        metavar="REGEX",
        help="also time static INT8 with these products fp32 (e.g. the sensitivity search's)",
    )
    args = parser.parse_args(argv)
    print(f"CPU: {current_cpu().describe()}")
    texts = [*SAMPLE_TEXTS, *(e.text for e in generate_splits(n_train=1)["dev"][: args.texts])]
    np.random.seed(0)
    for bundle in args.bundle:
        compare(bundle, texts, args.repeats, tuple(args.static_keep))


if __name__ == "__main__":
    main()
