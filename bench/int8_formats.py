"""INT8 formats side by side on this CPU: gate agreement with fp32 and raw ORT latency.

``python -m bench.int8_formats --bundle DIR [--bundle DIR ...]`` quantizes each fp32 NER bundle's
graph once per INT8 format (``export.variants.schemes.INT8_SCHEMES``), runs the export's own
accuracy gate (served Viterbi tags, worst of batch 1 and 32) against the fp32 graph on the food
corpus dev utterances, and times single calls at 1 x 16 and 32 x 32 tokens, formats interleaved.
Static INT8 rows (``--quantize int8-static``'s graph, percentile 99.99 ranges calibrated on the
same texts) follow, whole and with ``--static-keep`` products fp32.
Prints the CPU model and ISA flags first: both columns depend on them (VNNI or not).

``python -m bench.int8_formats --shipped DIR [--shipped DIR ...] [--fp32 DIR]`` times the graphs a
bundle *ships* instead (``onnx`` and every ``int8_graphs`` entry, e.g. ``u8s8-reduced`` and
``u8s8``; ``--fp32``: the fp32 bundle it was quantized from), with the gate figures and kept-fp32
counts its export recorded: c=1 p50 (each text alone, raw session) and b=32 throughput (texts
sorted by length, batches of 32: raw session in length buckets), graphs interleaved.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.inputs import document
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
from service.bundle import ManifestBase, read_manifest
from service.runtime.cpu_features import current_cpu
from service.runtime.cpus import available_cpus
from service.runtime.graph_choice import candidates, order_graphs
from service.runtime.session import OnnxSession
from service.text.inputs import build_inputs
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


def _shipped_texts(manifest: ManifestBase, bundle: Path, count: int) -> list[str]:
    """Food-corpus utterances for NER bundles, else documents of 300-3,000 tokens (cut to one
    window when timed)."""
    if manifest.task == "ner":
        pool = [e.text for e in generate_splits(n_train=1)["dev"]]
        return [pool[i % len(pool)] for i in range(count)]
    tokenizer = bundle / manifest.tokenizer.file
    rng = np.random.default_rng(0)
    return [document(tokenizer, int(rng.integers(300, 3000)), seed=i) for i in range(count)]


def shipped(bundle: Path, fp32: Path | None, count: int, rounds: int) -> None:
    """Every graph ``bundle`` ships, as the service would run it: c=1 p50 and b=32 texts/s."""
    manifest = read_manifest(bundle)
    assert isinstance(manifest, ManifestBase) and manifest.has_graph, f"{bundle}: no graph"
    tokenizer = TextTokenizer(bundle / manifest.tokenizer.file)
    capacity = manifest.tokenizer.max_length - tokenizer.num_special_tokens
    pad = manifest.tokenizer.pad_token_id
    rows = [
        e.ids[:capacity] for e in tokenizer.encode_batch(_shipped_texts(manifest, bundle, count))
    ]
    rows.sort(key=len)
    singles = [build_inputs([r], tokenizer.prefix_ids, tokenizer.suffix_ids, pad) for r in rows]
    batches = [
        build_inputs(rows[i : i + 32], tokenizer.prefix_ids, tokenizer.suffix_ids, pad)
        for i in range(0, len(rows), 32)
    ]
    threads = available_cpus()
    graphs = candidates(manifest)
    order, _, reason = order_graphs(manifest, current_cpu())
    sessions = {
        g.label: OnnxSession(bundle / g.file, manifest.onnx.output, threads)
        for g in graphs
        if g in order
    }
    if fp32 is not None:
        fp32_manifest = read_manifest(fp32)
        assert isinstance(fp32_manifest, ManifestBase)
        sessions["fp32 bundle"] = OnnxSession(
            fp32 / fp32_manifest.onnx.file, fp32_manifest.onnx.output, threads
        )
    single_ms: dict[str, list[float]] = {name: [] for name in sessions}
    batch_s: dict[str, list[float]] = {name: [] for name in sessions}
    for session in sessions.values():  # warm-up
        session.run(singles[0])
        session.run(batches[0])
    for _ in range(rounds):
        for name, session in sessions.items():
            for feed in singles:
                began = time.perf_counter()
                session.run(feed)
                single_ms[name].append(1e3 * (time.perf_counter() - began))
            began = time.perf_counter()
            for feed in batches:
                session.run(feed)
            batch_s[name].append(time.perf_counter() - began)
    tokens = sum(len(r) for r in rows) / len(rows)
    print(
        f"\n### {manifest.name} ({bundle}): {len(rows)} texts (mean {tokens:.0f} tokens, one "
        f"window each), ORT threads {threads}, {rounds} rounds; served here: {order[0].label} "
        f"({reason})\n"
    )
    print(
        "| graph | file | exact on | kept fp32 | gate agreement | texts identical "
        "| max abs vs fp32 | c=1 p50 ms | b=32 texts/s |"
    )
    print("|---" * 9 + "|")
    for g in graphs:
        exact_on = " or ".join(g.requires_cpu_features) or "every CPU"
        if g.label not in sessions:
            print(f"| {g.label} | {g.file} | {exact_on} | not exact on this CPU: not timed |||||")
            continue
        record = manifest.variant if g.file == manifest.onnx.file else None
        extra = next((x for x in manifest.int8_graphs if x.file == g.file), None)
        figures = extra or record
        ident = f"{figures.exact_match}" if figures and figures.exact_match is not None else "–"
        diff = figures.max_abs_diff_vs_fp32 if figures else None
        print(
            f"| {g.label} | {g.file} | {exact_on} | {g.kept_fp32_nodes} "
            f"| {g.agreement if g.agreement is not None else '–'} | {ident} "
            f"| {f'{diff:.3g}' if diff is not None else '–'} "
            f"| {statistics.median(single_ms[g.label]):.2f} "
            f"| {len(rows) / statistics.median(batch_s[g.label]):.1f} |"
        )
    if fp32 is not None:
        name = "fp32 bundle"
        print(
            f"| fp32 | {fp32.name}/{read_manifest(fp32).model_digest()[:8]} | every CPU | all | 1 "
            f"| 1 | 0 | {statistics.median(single_ms[name]):.2f} "
            f"| {len(rows) / statistics.median(batch_s[name]):.1f} |"
        )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--bundle", type=Path, action="append", default=[])
    parser.add_argument(
        "--shipped",
        type=Path,
        action="append",
        default=[],
        help="time the graphs this bundle ships (every INT8 format it carries)",
    )
    parser.add_argument("--fp32", type=Path, help="with --shipped: the fp32 bundle, timed too")
    parser.add_argument("--count", type=int, default=64, help="with --shipped: texts timed")
    parser.add_argument("--rounds", type=int, default=3, help="with --shipped: timed rounds")
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
    if not args.bundle and not args.shipped:
        parser.error("give --bundle (fp32 bundles to quantize) or --shipped (bundles to time)")
    print(f"CPU: {current_cpu().describe()}")
    for bundle in args.shipped:
        shipped(bundle, args.fp32, args.count, args.rounds)
    texts = [*SAMPLE_TEXTS, *(e.text for e in generate_splits(n_train=1)["dev"][: args.texts])]
    np.random.seed(0)
    for bundle in args.bundle:
        compare(bundle, texts, args.repeats, tuple(args.static_keep))


if __name__ == "__main__":
    main()
