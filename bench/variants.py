"""Graph variants of one NER checkpoint side by side: export time, size, gates, raw ORT latency.

``python -m bench.variants --checkpoint DIR --work DIR`` exports the checkpoint once per variant
with ``python -m export ner``'s own code: fp32, --optimize, --quantize int8, both (``--variants``
picks others: ``int8-pt`` for per-tensor weight scales, ``int8-ffn32`` with the FFN output
projections kept fp32). Then it times single calls of the raw ONNX Runtime sessions at 1 x 16 and
32 x 32 tokens, every variant in the same process, rounds interleaved so that a noisy neighbour
hurts all variants alike. Prints a markdown table.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import statistics
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from export.api import export_bundle
from export.errors import ExportError
from export.variants.gate import AccuracyGateError
from export.variants.request import DEFAULT_MIN_AGREEMENT, VariantRequest
from families.ner.export import NerOptions
from families.ner.spec import NerManifest
from service.runtime.cpu_features import current_cpu
from service.runtime.cpus import available_cpus
from service.runtime.session import OnnxSession

FFN_OUTPUT = r"layer\.\d+/output/dense"  # BERT's FFN output projections (node names)
VARIANTS = {
    "fp32": VariantRequest(),
    "optimize": VariantRequest(optimize=True),
    "int8": VariantRequest(quantize="int8"),
    "optimize+int8": VariantRequest(optimize=True, quantize="int8"),
    "int8-pt": VariantRequest(quantize="int8", per_channel=False),
    "optimize+int8-pt": VariantRequest(optimize=True, quantize="int8", per_channel=False),
    "int8-ffn32": VariantRequest(quantize="int8", keep_fp32=(FFN_OUTPUT,)),
}
SHAPES = ((1, 16), (32, 32))


@dataclass
class Row:
    variant: str
    export_s: float
    size_mb: float
    parity_max_abs_diff: float
    agreement: float | None
    max_abs_diff_vs_fp32: float | None
    latency_ms: dict[str, float]


def _export(checkpoint: Path, out: Path, request: VariantRequest, max_length: int) -> float:
    began = time.perf_counter()
    options = NerOptions(
        checkpoint=checkpoint,
        out=out,
        force=True,
        max_length=max_length,
        stride=max_length // 4,
        variant=request,
    )
    with contextlib.redirect_stdout(io.StringIO()):
        try:
            export_bundle("ner", options)
        except AccuracyGateError:
            raise  # the caller reports the variant as refused
        except ExportError as exc:
            raise SystemExit(f"export of {out.name} failed: {exc}") from exc
    return time.perf_counter() - began


def _inputs(batch: int, tokens: int, seed: int = 0) -> dict[str, np.ndarray]:
    ids = np.random.default_rng(seed).integers(1000, 20000, size=(batch, tokens), dtype=np.int64)
    ids[:, 0], ids[:, -1] = 101, 102
    return {
        "input_ids": ids,
        "attention_mask": np.ones_like(ids),
        "token_type_ids": np.zeros_like(ids),
    }


def _latencies(sessions: dict[str, OnnxSession], repeats: int) -> dict[str, dict[str, float]]:
    """Median ms per variant and shape; each round runs every variant once, in turn."""
    times: dict[str, dict[str, list[float]]] = {v: {} for v in sessions}
    for batch, tokens in SHAPES:
        shape = f"{batch}x{tokens}"
        inputs = _inputs(batch, tokens)
        rounds = repeats if batch * tokens <= 64 else max(3, repeats // 4)
        for session in sessions.values():
            session.run(inputs)  # warm-up: first-call allocation
        for _ in range(rounds):
            for name, session in sessions.items():
                began = time.perf_counter()
                session.run(inputs)
                times[name].setdefault(shape, []).append((time.perf_counter() - began) * 1e3)
    return {
        v: {s: round(statistics.median(t), 2) for s, t in by_shape.items()}
        for v, by_shape in times.items()
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--checkpoint", type=Path, required=True, help="NER checkpoint directory")
    parser.add_argument("--work", type=Path, required=True, help="where the bundles are written")
    parser.add_argument(
        "--variants", default="fp32,optimize,int8,optimize+int8", help=f"from {sorted(VARIANTS)}"
    )
    parser.add_argument("--max-length", type=int, default=128, help="bundle window (default 128)")
    parser.add_argument("--repeats", type=int, default=20, help="timed rounds at 1x16 (default 20)")
    parser.add_argument("--json", type=Path, help="also write the rows as JSON here")
    parser.add_argument(
        "--min-agreement",
        type=float,
        default=DEFAULT_MIN_AGREEMENT,
        help="the INT8 exports' accuracy gate (a refused variant is reported, not timed)",
    )
    parser.add_argument(
        "--validation",
        type=Path,
        help='extra gate texts for the INT8 exports ({"text": ...} lines)',
    )
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="time bundles already in --work (export time read from their manifests)",
    )
    args = parser.parse_args(argv)
    print(f"CPU: {current_cpu().describe()}", flush=True)
    names = args.variants.split(",")
    unknown = set(names) - set(VARIANTS)
    if unknown:
        parser.error(f"unknown variants {sorted(unknown)}")
    exported = {}
    for name in names:
        out = args.work / name.replace("+", "-")
        if args.reuse and (out / "bundle.json").is_file():
            manifest = NerManifest.model_validate_json((out / "bundle.json").read_text())
            exported[name] = (out, manifest.export.duration_s)
            continue
        request = VARIANTS[name].model_copy(update={"min_agreement": args.min_agreement})
        if request.quantize:
            request = request.model_copy(update={"validation": args.validation})
        try:
            exported[name] = (out, _export(args.checkpoint, out, request, args.max_length))
        except AccuracyGateError as exc:
            print(f"{name}: refused by the accuracy gate: {exc}")
    threads = available_cpus()
    sessions = {
        n: OnnxSession(out / "model.onnx", "emissions", threads) for n, (out, _) in exported.items()
    }
    latency = _latencies(sessions, args.repeats)
    rows = []
    for name, (out, seconds) in exported.items():
        manifest = NerManifest.model_validate_json((out / "bundle.json").read_text())
        variant = manifest.variant
        rows.append(
            Row(
                name,
                round(seconds, 1),
                round((out / "model.onnx").stat().st_size / 1e6, 1),
                manifest.parity.max_abs_diff,
                variant.agreement if variant else None,
                variant.max_abs_diff_vs_fp32 if variant else None,
                latency[name],
            )
        )
    shapes = [f"{b}x{t}" for b, t in SHAPES]
    print(f"\nORT intra-op threads {threads}; median of interleaved rounds\n")
    print(
        "| variant | export s | model MB | parity vs PyTorch (max abs) | tag agreement vs fp32 "
        "| max abs vs fp32 | " + " | ".join(f"{s} ms" for s in shapes) + " |"
    )
    print("|---" * (6 + len(shapes)) + "|")
    fp32 = latency.get("fp32")
    for r in rows:
        cells = []
        for s in shapes:
            speedup = f" ({fp32[s] / r.latency_ms[s]:.1f}x)" if fp32 and r.variant != "fp32" else ""
            cells.append(f"{r.latency_ms[s]:.1f}{speedup}")
        agreement = "-" if r.agreement is None else f"{r.agreement:.4f}"
        vs_fp32 = "-" if r.max_abs_diff_vs_fp32 is None else f"{r.max_abs_diff_vs_fp32:.2e}"
        print(
            f"| {r.variant} | {r.export_s:.1f} | {r.size_mb:.1f} | {r.parity_max_abs_diff:.2e} "
            f"| {agreement} | {vs_fp32} | " + " | ".join(cells) + " |"
        )
    if args.json:
        args.json.write_text(json.dumps([asdict(r) for r in rows], indent=2) + "\n")


if __name__ == "__main__":
    main()
