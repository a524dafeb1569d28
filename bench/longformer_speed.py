"""Latency of a Longformer-base-sized classifier: HF eager PyTorch vs the blocked graph in ORT,
fp32 and INT8 (static: calibrated activation ranges, the mode the gate passes on the default
posture model; dynamic: per-call scales, as an extra row).

Not a test: it builds a random 12-layer, hidden-768, window-512 model with 41 labels, exports
`ExportableLongformer` once with dynamic axes, checks parity against HF eager at every length (and
on one padded batch), and prints median batch-1 latencies as a Markdown table. Weights use HF's
default init; the exactness tests with peaky weights live in tests/export. ``python -m bench``
runs :func:`measure` too (in a worker process), so both print the same comparison.

    .venv/bin/python -m bench.longformer_speed --lengths 512 1024 2048 4096 --repeats 3 --int8
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from bench.host import describe, fast_isa, host, measure_peaks

if TYPE_CHECKING:
    import onnxruntime as ort
    import torch
    from transformers import LongformerForSequenceClassification

INT8_MODES = ("static", "dynamic")  # static first: the one the targets judge
CALIBRATION_INPUTS = 3  # random-token inputs the static ranges are measured on, each run alone
Result = dict[str, Any]


def _parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lengths", type=int, nargs="+", default=[512, 1024, 2048, 4096])
    parser.add_argument("--repeats", type=int, default=3, help="timed runs after one warm-up")
    parser.add_argument(
        "--threads", type=int, default=len(os.sched_getaffinity(0)), help="torch and ORT threads"
    )
    parser.add_argument(
        "--clock",
        choices=["wall", "cpu"],
        default="wall",
        help="cpu: the calling thread's CPU time, less sensitive to other jobs on a shared box "
        "(only meaningful with --threads 1, where both runtimes compute in the calling thread)",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, help="also write the host and every row here")
    parser.add_argument(
        "--gemm-n", type=int, default=1024, help="size of the matmul peak measurement (n³)"
    )
    parser.add_argument(
        "--size", choices=["base", "tiny"], default="base", help="tiny: a smoke-test model"
    )
    parser.add_argument(
        "--int8",
        nargs="*",
        choices=INT8_MODES,
        help="also time INT8 graphs: static (ranges calibrated on random-token inputs, the "
        "export's quantize_static_int8) and/or dynamic (the export's per-call quantizer); "
        "bare --int8: both",
    )
    args = parser.parse_args()
    if args.clock == "cpu" and args.threads != 1:
        parser.error("--clock cpu needs --threads 1")
    if args.int8 is not None and not args.int8:
        args.int8 = list(INT8_MODES)
    return args


def _model(size: str = "base") -> LongformerForSequenceClassification:
    """longformer-base-4096's shape with random weights (no model hub here); ``tiny``: same
    structure, a few MB, for the CI smoke run."""
    from transformers import LongformerConfig, LongformerForSequenceClassification

    shape: dict[str, Any] = (
        {"hidden_size": 768, "num_hidden_layers": 12, "num_attention_heads": 12}
        | {"intermediate_size": 3072, "attention_window": 512}
        if size == "base"
        else {"hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2}
        | {"intermediate_size": 128, "attention_window": 64}
    )
    config = LongformerConfig(
        vocab_size=50265,
        max_position_embeddings=4098,
        num_labels=41,
        problem_type="multi_label_classification",
        **shape,
    )
    model = LongformerForSequenceClassification(config)
    model.eval()
    return model


def _inputs(lengths: list[int], vocab: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-padded random ids with <s> (id 0) first and pad id 1 after each length."""
    import torch

    input_ids = torch.randint(3, vocab, (len(lengths), max(lengths)))
    attention_mask = torch.zeros_like(input_ids)
    input_ids[:, 0] = 0
    for row, length in enumerate(lengths):
        attention_mask[row, :length] = 1
        input_ids[row, length:] = 1
    return input_ids, attention_mask


def _median_seconds(run: Callable[[], object], repeats: int, clock: Callable[[], float]) -> float:
    # Idle threads of the previous runtime (OpenMP, ORT's pool) spin for a while after each run
    # and would steal one of the two cores: let them settle first.
    time.sleep(1.0)
    run()  # warm-up: allocations, ORT's first-run planning
    times = []
    for _ in range(repeats):
        start = clock()
        run()
        times.append(clock() - start)
    return statistics.median(times)


def _hf_probs(
    model: LongformerForSequenceClassification, ids: torch.Tensor, mask: torch.Tensor
) -> np.ndarray:
    """HF eager sigmoid probabilities with global attention on <s> only."""
    import torch

    global_mask = torch.zeros_like(ids)
    global_mask[:, 0] = 1
    with torch.inference_mode():
        logits = model(ids, attention_mask=mask, global_attention_mask=global_mask).logits
    return torch.sigmoid(logits).numpy()


def _session(path: Path, threads: int) -> ort.InferenceSession:
    import onnxruntime as ort

    from service.runtime.session import DISABLED_OPTIMIZERS

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(  # the service's rewrites: static INT8 must reach integer kernels
        str(path), options, ["CPUExecutionProvider"], disabled_optimizers=DISABLED_OPTIMIZERS
    )


def _ort_probs(session: ort.InferenceSession, ids: torch.Tensor, mask: torch.Tensor) -> np.ndarray:
    feeds = {"input_ids": ids.numpy(), "attention_mask": mask.numpy()}
    logits: np.ndarray = session.run(["logits"], feeds)[0]
    probs: np.ndarray = 1.0 / (1.0 + np.exp(-logits))
    return probs


def _quantize(mode: str, fp32: Path, vocab: int, calibration_length: int) -> tuple[Path, Result]:
    """The INT8 graph of ``fp32`` with the export's own quantizers (per-channel weights, the
    default format); static ranges come from a few random-token inputs, each run alone."""
    from export.variants.schemes import DEFAULT_INT8_FORMAT

    out = fp32.with_name(f"{fp32.stem}.int8-{mode}.onnx")
    started = time.perf_counter()
    if mode == "dynamic":
        from export.variants.graphs import quantize_int8

        quantize_int8(fp32, out, per_channel=True)
        return out, {"seconds": time.perf_counter() - started}
    from export.variants.static import (
        Calibration,
        collect_activations,
        compute_ranges,
        quantize_static_int8,
    )

    feeds = []
    for _ in range(CALIBRATION_INPUTS):
        ids, mask = _inputs([calibration_length], vocab)
        feeds.append({"input_ids": ids.numpy(), "attention_mask": mask.numpy()})
    calibration = Calibration()
    ranges = compute_ranges(collect_activations(fp32, feeds), calibration)
    kept = quantize_static_int8(fp32, out, ranges, True, DEFAULT_INT8_FORMAT)
    info = {
        "seconds": time.perf_counter() - started,
        "calibration": f"{calibration.describe()} on {CALIBRATION_INPUTS} random-token inputs "
        f"of {calibration_length} tokens",
        "kept_fp32_nodes": len(kept),
        "format": DEFAULT_INT8_FORMAT,
    }
    return out, info


def _bench_length(
    model: LongformerForSequenceClassification,
    session: ort.InferenceSession,
    int8: dict[str, ort.InferenceSession],
    length: int,
    repeats: int,
    clock: Callable[[], float],
) -> Result:
    """HF eager vs the ORT graph(s) at batch 1: median seconds and probability differences."""
    ids, mask = _inputs([length], model.config.vocab_size)
    reference = _hf_probs(model, ids, mask)
    row: Result = {
        "tokens": length,
        "diff": float(np.abs(reference - _ort_probs(session, ids, mask)).max()),
        "hf_s": _median_seconds(lambda: _hf_probs(model, ids, mask), repeats, clock),
        "ort_s": _median_seconds(lambda: _ort_probs(session, ids, mask), repeats, clock),
        "int8": {},
    }
    for mode, quantized in int8.items():
        probs = _ort_probs(quantized, ids, mask)

        def run(q: ort.InferenceSession = quantized) -> np.ndarray:
            return _ort_probs(q, ids, mask)

        row["int8"][mode] = {
            "s": _median_seconds(run, repeats, clock),
            "diff": float(np.abs(reference - probs).max()),
            "flips": int(((probs >= 0.5) != (reference >= 0.5)).sum()),  # vs HF's decisions
        }
    row["load_1min"] = os.getloadavg()[0]  # other jobs on the box skew wall times: say so
    return row


def measure(
    lengths: Sequence[int],
    repeats: int,
    threads: int,
    int8_modes: Sequence[str] = (),
    size: str = "base",
    clock: str = "wall",
    seed: int = 0,
    log: Callable[[str], None] = print,
) -> Result:
    """Export, quantize and time every length; the JSON-ready result :func:`table` renders."""
    import torch

    from families.postures.blocked_longformer import ExportableLongformer, export_onnx

    torch.manual_seed(seed)
    torch.set_num_threads(threads)
    model = _model(size)
    vocab, window = model.config.vocab_size, model.config.attention_window
    window = window[0] if isinstance(window, list) else window
    result: Result = {"size": size, "threads": threads, "repeats": repeats, "clock": clock}
    result["num_labels"] = model.config.num_labels
    keys = ("hidden_size", "intermediate_size", "num_hidden_layers", "attention_window")
    result["config"] = {k: getattr(model.config, k) for k in keys}  # for the FLOP counts
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        path = export_onnx(ExportableLongformer(model), Path(tmp) / "longformer_blocked.onnx")
        result["export_s"] = time.perf_counter() - start
        log(f"export {result['export_s']:.1f} s, {path.stat().st_size / 2**20:.0f} MiB")
        session = _session(path, threads)
        int8, result["int8"] = {}, {}
        for mode in int8_modes:
            quantized, info = _quantize(mode, path, vocab, min(min(lengths), window))
            result["int8"][mode] = info
            log(f"INT8 {mode}: {info}")
            int8[mode] = _session(quantized, threads)
        batch = [min(lengths) + 37, 1]
        ids, mask = _inputs(batch, vocab)
        batch_diff = np.abs(_hf_probs(model, ids, mask) - _ort_probs(session, ids, mask)).max()
        result["padded_batch"] = {"lengths": batch, "max_abs_prob_diff": float(batch_diff)}
        log(f"padded batch {batch}: max abs prob diff {batch_diff:.1e}")
        timer = time.thread_time if clock == "cpu" else time.perf_counter
        result["rows"] = []
        for length in lengths:
            result["rows"].append(_bench_length(model, session, int8, length, repeats, timer))
            log(table(result)[-1])
    return result


def _seconds(value: float) -> str:
    return f"{value:.2f} s" if value >= 0.1 else f"{value * 1000:.1f} ms"


def table(result: Result) -> list[str]:
    """Markdown rows: HF eager, ORT fp32 and each INT8 graph, with speed-ups and differences."""
    modes = list(result.get("int8", {}))
    head = "| tokens | HF eager | ORT fp32 blocked | speed-up | max abs prob diff |"
    rule = "|---:|---:|---:|---:|---:|"
    for mode in modes:
        head += f" ORT INT8 {mode} | speed-up | max abs prob diff | labels flipped |"
        rule += "---:|---:|---:|---:|"
    lines = [head + " load avg |", rule + "---:|"]
    for row in result.get("rows", []):
        line = (
            f"| {row['tokens']} | {_seconds(row['hf_s'])} | {_seconds(row['ort_s'])} "
            f"| {row['hf_s'] / row['ort_s']:.2f}× | {row['diff']:.1e} |"
        )
        for mode in modes:
            q = row["int8"][mode]
            line += (
                f" {_seconds(q['s'])} | {row['hf_s'] / q['s']:.2f}× | {q['diff']:.1e} "
                f"| {q['flips']} of {result['num_labels']} |"
            )
        lines.append(f"{line} {row['load_1min']:.1f} |")
    return lines


def targets(info: Result, result: Result) -> list[tuple[str, float, float]]:
    """(what, measured speed-up, needed) at the longest length timed, by host class: fp32 and
    static INT8 are the issue's targets (dynamic INT8 is not judged)."""
    if not result.get("rows"):
        return []
    row = max(result["rows"], key=lambda r: int(r["tokens"]))
    fast = fast_isa(info)
    out = [("fp32", row["hf_s"] / row["ort_s"], 3.0 if fast else 2.0)]
    if "static" in row["int8"]:
        out.append(("static INT8", row["hf_s"] / row["int8"]["static"]["s"], 6.0 if fast else 3.5))
    return out


def main() -> None:
    args = _parse_args()
    info = host(measure_peaks(args.gemm_n, 3, args.threads))
    print(describe(info), flush=True)
    print(f"\nbatch 1, {args.threads} thread(s), {args.clock} time, median of {args.repeats}")
    result = measure(
        args.lengths,
        args.repeats,
        args.threads,
        args.int8 or (),
        args.size,
        args.clock,
        args.seed,
        log=lambda line: print(line, flush=True),
    )
    print("\n" + "\n".join(table(result)))
    longest = max(int(r["tokens"]) for r in result["rows"])
    print(f"\ntargets at {longest} tokens (host class {info['class']}):")
    for name, speedup, need in targets(info, result):
        verdict = "met" if speedup >= need else "missed"
        print(f"- {name} ≥ {need:g}× PyTorch eager: {speedup:.2f}× ({verdict})")
    if args.json:
        args.json.write_text(json.dumps({"host": info, **result}))


if __name__ == "__main__":
    main()
