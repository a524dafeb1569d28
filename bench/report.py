"""The benchmark's Markdown table: NER contenders, targets, postures, GEMM peak fractions."""

from __future__ import annotations

from typing import Any

from bench.host import describe, fast_isa
from bench.longformer_speed import table as longformer_table
from bench.longformer_speed import targets as longformer_targets

Result = dict[str, Any]
GIB = 2**20  # KiB per GiB


def _row(name: str, setting: str, s: Result, unit: str = "ms") -> str:
    scale = 1.0 if unit == "ms" else 1 / 1000
    return (
        f"| {name} | {setting} | {s['p50_ms'] * scale:.1f} | {s['p95_ms'] * scale:.1f} "
        f"| {s['p99_ms'] * scale:.1f} | {s['per_s']:.1f} | {s.get('per_cpu_s', 0):.1f} |"
    )


VARIANT_NAMES = {"fp32": "fp32 bundle", "int8": "INT8 bundle"}


def graph_note(graph: Result) -> str:
    """What a NER bundle's graph is: INT8 with its gate figures, or the export's refusal."""
    if graph.get("quantization"):
        calibration = graph.get("calibration") or {}
        how = (
            f", calibrated {calibration.get('method')} {calibration.get('percentile') or ''} "
            f"on {calibration.get('texts')} texts"
            if calibration
            else ""
        )
        note = (
            f"{graph['quantization']}, `{graph.get('int8_format') or 'u8s8'}` (gate: agreement "
            f"{graph['agreement']:.4f} ≥ {graph['min_agreement']:g}, "
            f"{graph['kept_fp32_nodes']} products kept fp32{how})"
        )
        for other in graph.get("also") or []:
            note += (
                f"; also `{other['int8_format']}` (agreement {other['agreement']:.4f}, "
                f"{other['kept_fp32_nodes']} kept fp32)"
            )
        for fmt, why in (graph.get("also_refused") or {}).items():
            note += f"; `{fmt}` left out ({why})"
        served = graph.get("served") or {}
        if served:
            note += (
                f". **Served here: `{served.get('int8_format') or 'fp32'}`** "
                f"(`{served.get('file')}`: {served.get('reason')})"
            )
        return note
    if graph.get("refused"):
        return f"**fp32 graph served**: the export refused INT8 ({graph['refused']})"
    return "fp32"


def _serves_int8(ner: Result) -> bool:
    return "int8" in ner["variants"] and bool(ner["variants"]["int8"]["graph"]["quantization"])


def _ner_table(report: Result) -> list[str]:
    ner = report["ner"]
    lines = [
        f"### NER: BERT-{report['size']}-sized BERT-CRF (random weights); "
        f"{report['utterances']} utterances of 8-40 tokens",
        "",
    ]
    for variant, v in ner["variants"].items():
        lines.append(f"- {VARIANT_NAMES[variant]} `{v['bundle']}`: {graph_note(v['graph'])}")
    lines += [
        "",
        "Service rows: one utterance per HTTP request, `c` clients in a closed loop. Other rows: "
        "in-process batches of `b` utterances (latency = one batch). Per CPU-s: utterances per "
        "CPU-second the contender used (service: server process + load generator), which other "
        "jobs on the box disturb less than wall time.",
        "",
        "| contender | setting | p50 ms | p95 ms | p99 ms | utterances/s | per CPU-s |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for variant, v in ner["variants"].items():
        for spin, service in _spinning_runs(v, "service"):
            for c, s in service["levels"].items():
                name = f"service over HTTP, {VARIANT_NAMES[variant]}{spin}"
                lines.append(_row(name, f"c={c}", s))
    contenders = [
        ("PyTorch eager fp32 + pytorch-crf, best configuration", ner["torch"]),
        (
            f"optimum ORTModel + pipeline ({VARIANT_NAMES[ner['optimum_variant']]}), best "
            "configuration",
            ner["optimum"],
        ),
    ]
    for variant, v in ner["variants"].items():
        for spin, raw in _spinning_runs(v, "ort"):
            name = f"raw ORT session ({VARIANT_NAMES[variant]}, pre-tokenized){spin}"
            contenders.append((name, raw))
    for name, results in contenders:
        for b, s in results.items():
            if b.isdigit():
                lines.append(_row(name, f"b={b}", s))
    return lines


def _spinning_runs(v: Result, key: str) -> list[tuple[str, Result]]:
    """The service (or raw session) runs of a variant: as it ships (spinning off) and, when the
    run measured it, with ``INFER_INTRA_OP_SPINNING=true``; the label says which."""
    runs = v.get(f"{key}_spinning")
    if not runs:
        return [("", v[key])]
    if list(runs) == ["off"]:
        return [("", runs["off"])]
    return [(f", spinning {k}", r) for k, r in runs.items()]


def baselines_table(name: str, baseline: Result, unit: str = "b") -> list[str]:
    """Every configuration of a baseline that this run tried, per batch size (or document
    length): items/s and p50, the best one in bold; the targets use the best."""
    configs = baseline.get("configs")
    if not configs:
        return []
    keys = sorted({k for r in configs.values() for k in r if k.isdigit()}, key=int)
    lines = [
        "",
        f"{name}: configurations tried ({len(configs)}); per {unit}: items/s (p50 ms); "
        "**bold** = best (most items/s; at b=1 lowest p50), the one every target uses",
        "",
        "| configuration | " + " | ".join(f"{unit}={k}" for k in keys) + " |",
        "|---|" + "---:|" * len(keys),
    ]
    for label, runs in configs.items():
        cells = []
        for k in keys:
            if k not in runs:
                cells.append("—")
                continue
            cell = f"{runs[k]['per_s']:.1f} ({runs[k]['p50_ms']:.0f})"
            cells.append(f"**{cell}**" if baseline["best"].get(k) == label else cell)
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return lines


def _baselines(report: Result) -> list[str]:
    lines = [
        "",
        "### Baselines: configurations tried (the strongest is the one compared against)",
        "",
        "PyTorch uses OpenMP: `OMP_WAIT_POLICY` default (the runtime's spin-then-sleep) vs "
        "PASSIVE (sleep at once); optimum runs ONNX Runtime, whose own pool has "
        "`session.intra_op.allow_spinning` instead. Threads: 1 and all CPUs (quick: all only).",
    ]
    if "ner" in report:
        ner = report["ner"]
        lines += baselines_table("PyTorch eager NER", ner["torch"])
        lines += baselines_table("optimum NER", ner["optimum"])
    if "postures" in report:
        lines += baselines_table("PyTorch eager postures", report["postures"]["torch"], "tokens")
    longformer = report.get("longformer", {})
    if "eager_s_by_policy" in longformer:
        lines += [
            "",
            f"HF eager Longformer (s per document; the targets use {longformer['best_policy']}):",
            "",
        ]
        for label, by_tokens in longformer["eager_s_by_policy"].items():
            cells = ", ".join(f"{t} tokens {s:.3f} s" for t, s in by_tokens.items())
            lines.append(f"- {label}: {cells}")
    return lines


def _winner(baseline: Result, key: str) -> str:
    """Which configuration of a baseline the targets use at this batch size or length."""
    return str(baseline.get("best", {}).get(key, "the one configuration run"))


def _ratio(a: float, b: float) -> float:
    return a / b if b else float("nan")


def _met(ok: bool) -> str:
    return "met" if ok else "missed"


def _fast_isa(report: Result) -> bool:
    return fast_isa(report["host"])


def _padding_table(report: Result) -> list[str]:
    """Useful vs padded tokens: the service (its own metrics) and the raw session's two plans."""
    ner = report["ner"]
    lines = [
        "",
        "### Padding: useful vs padded token positions computed",
        "",
        "| where | useful tokens | padded tokens | padded share | ONNX calls per batch "
        "| utterances/s |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for variant, v in ner["variants"].items():
        name = VARIANT_NAMES[variant]
        for c, level in v["service"]["levels"].items():
            tokens = level.get("call_tokens")
            if tokens:
                total = tokens["useful"] + tokens["padding"]
                lines.append(
                    f"| service c={c}, {name} (`infer_call_tokens_total`) "
                    f"| {tokens['useful']:,.0f} | {tokens['padding']:,.0f} "
                    f"| {_ratio(tokens['padding'], total):.1%} | — | {level['per_s']:.1f} |"
                )
        big = max((b for b in v["ort"] if b.isdigit()), key=int)
        for plan, r in v.get("buckets", {}).items():
            if not isinstance(r, dict):
                continue
            how = (
                "one padded call" if not plan.isdigit() else f"length buckets ({plan} tokens/call)"
            )
            lines.append(
                f"| raw ORT b={big}, {name}, through `run_rows`, {how} | — | — "
                f"| {r['padded_fraction']:.1%} | {r['calls_per_batch']:.1f} | {r['per_s']:.1f} |"
            )
    return lines


def _targets(report: Result) -> list[str]:
    lines = [
        "",
        f"### Targets (ratios from this run; host class {report['host']['class']})",
        "",
        "| target | measured | met | measured ceiling (same run) |",
        "|---|---|---|---|",
    ]
    if "ner" in report:
        lines += _ner_targets(report)
    if "postures" in report:
        lines += _posture_targets(report["postures"], _fast_isa(report))
    if "longformer" in report:
        lines += _longformer_targets(report)
    return lines


def _best_raw(v: Result) -> float:
    """The variant's fastest raw session throughput: one padded call or length buckets."""
    buckets = [r["per_s"] for r in v.get("buckets", {}).values() if isinstance(r, dict)]
    big = max((b for b in v["ort"] if b.isdigit()), key=int)
    return float(max([v["ort"][big]["per_s"], *buckets]))


def _ner_targets(report: Result) -> list[str]:
    ner, flops, lines = report["ner"], report["flops"], []
    variants = ner["variants"]
    big = max((b for b in ner["torch"] if b.isdigit()), key=int)
    torch = ner["torch"][big]
    if "fp32" in variants:
        v = variants["fp32"]
        top = max(v["service"]["levels"], key=int)
        service = flops[f"service c={top} (fp32)"]
        bucketed = flops.get(f"raw ORT b={big}, length buckets (fp32)")
        ceiling = (
            f"raw fp32 session b={big} in length buckets: {bucketed['fraction']:.0%} of the peak"
            if bucketed
            else "—"
        )
        lines.append(
            f"| NER c={top}, fp32 bundle: useful-token matmul rate ≥ 80% of the host's fp32 peak "
            f"| {service['fraction']:.0%} ({service['ops_per_s'] / 1e9:.0f} of "
            f"{service['peak'] / 1e9:.0f} GFLOP/s) | {_met(service['fraction'] >= 0.8)} "
            f"| {ceiling} |"
        )
    if "int8" in variants:
        v = variants["int8"]
        top = max(v["service"]["levels"], key=int)
        svc, best = v["service"]["levels"][top], _best_bucketed(v)
        served = "" if v["graph"]["quantization"] else " (fp32 graph served: INT8 refused)"
        if best is not None:
            vs_raw = svc["per_s"] / best["per_s"]
            lines.append(
                f"| NER c={top}, INT8 bundle: ≥ 95% of the raw INT8 session in length buckets"
                f"{served} | {vs_raw:.0%} ({svc['per_s']:.1f} vs {best['per_s']:.1f}/s) "
                f"| {_met(vs_raw >= 0.95)} "
                f"| {_cpu_ceiling(svc, best, report['host']['cpus_used'])} |"
            )
    need = 5.0 if _fast_isa(report) else 2.0
    host = "AVX-512/VNNI/AMX" if need == 5 else "AVX2-only"
    for variant, v in variants.items():
        top = max(v["service"]["levels"], key=int)
        svc = v["service"]["levels"][top]
        vs_torch = svc["per_s"] / torch["per_s"]
        lines.append(
            f"| NER c={top}, {VARIANT_NAMES[variant]}: ≥ {need:.0f}× PyTorch eager b={big} "
            f"({host} host; its best configuration: {_winner(ner['torch'], big)}) "
            f"| {vs_torch:.2f}× (per CPU-s "
            f"{_ratio(svc['per_cpu_s'], torch['per_cpu_s']):.2f}×) | {_met(vs_torch >= need)} "
            f"| best raw {variant} session {_best_raw(v) / torch['per_s']:.2f}× |"
        )
    lines += _spinning_rows(variants)
    for variant, v in variants.items():
        p50, floor = v["service"]["levels"]["1"]["p50_ms"], v["ort"]["1"]["p50_ms"]
        lines.append(
            f"| NER c=1, {VARIANT_NAMES[variant]}: p50 ≤ raw session b=1 + 2 ms "
            f"| {p50:.1f} ms vs {floor:.1f} + 2 ms | {_met(p50 <= floor + 2)} "
            f"| raw session b=1 {floor:.1f} ms; service overhead {p50 - floor:.1f} ms"
            f"{_c1_breakdown(v['service']['levels']['1'])} "
            f"(PyTorch eager b=1, {_winner(ner['torch'], '1')}: "
            f"{ner['torch']['1']['p50_ms']:.1f} ms, "
            f"{ner['torch']['1']['p50_ms'] / p50:.2f}× the service's p50) |"
        )
    if "int8" in variants:
        lines.append(_identity_row(variants))
    return lines


def _best_bucketed(v: Result) -> Result | None:
    """The raw session's fastest length-bucket plan (with its CPU cost), if measured."""
    plans = [r for p, r in v.get("buckets", {}).items() if p.isdigit() and isinstance(r, dict)]
    return max(plans, key=lambda r: r["per_s"], default=None)


def _cpu_ceiling(svc: Result, raw: Result, cpus: int) -> str:
    """What the service's own CPU per request allows: the raw session's time per utterance plus
    the CPU the service spends outside ONNX Runtime (HTTP, JSON, tokenizing, decoding) and the
    load generator's, spread over the cores they share."""
    if not raw.get("per_cpu_s") or not svc.get("per_cpu_s"):
        return f"raw INT8 session in length buckets {raw['per_s']:.1f}/s"
    extra_ms = 1000 * (1 / svc["per_cpu_s"] - 1 / raw["per_cpu_s"])
    client_ms = svc.get("client_cpu_ms_per_request", 0.0)
    ceiling = 1 / (1 / raw["per_s"] + max(extra_ms, 0.0) / 1000 / cpus)
    runs = raw.get("runs_per_s") or []
    spread = (
        f" (best of {len(runs)} runs: {', '.join(f'{r:.1f}' for r in runs)})"
        if len(runs) > 1
        else ""
    )
    return (
        f"raw in buckets {raw['per_s']:.1f}/s{spread} at {1000 / raw['per_cpu_s']:.1f} CPU-ms per "
        f"utterance; the service {1000 / svc['per_cpu_s']:.1f} CPU-ms per request: "
        f"{extra_ms:.1f} more (HTTP, JSON, tokenizing, decoding; {client_ms:.2f} of it the load "
        f"generator's) on {cpus} shared cores: ceiling {ceiling:.1f}/s = "
        f"{ceiling / raw['per_s']:.0%} of raw; the service reaches {svc['per_s'] / ceiling:.0%} "
        f"of that ceiling{_threads(svc)}"
    )


THREAD_ROLES = {
    "batcher": "model worker (ONNX Runtime's calling thread)",
    "MainThread": "event loop (HTTP, JSON, validation, tokenizing)",
    "finish": "finisher (decoding)",
    "tokenize": "tokenizer thread (large requests)",
}


def _threads(svc: Result) -> str:
    """The server's CPU per request split by thread, and the service's rounds, when measured."""
    rounds = svc.get("rounds_per_s") or []
    out = ""
    if len(rounds) > 1:
        out += f"; service best of {len(rounds)} rounds ({', '.join(f'{r:.1f}' for r in rounds)})"
    used = svc.get("thread_cpu_ms") or {}
    if used:
        parts = ", ".join(f"{THREAD_ROLES.get(k, k)} {v:.2f}" for k, v in used.items())
        out += f"; server CPU-ms per request by thread: {parts}"
    return out


def _c1_breakdown(level: Result) -> str:
    """Where the service's c=1 time went, from its own histograms (mean ms per request)."""
    ms = level.get("server_ms") or {}
    if "request" not in ms:
        return ""
    stages = ("tokenize", "queue", "inference", "decode")
    app = ms["request"] - sum(ms.get(s, 0.0) for s in stages)
    parts = ", ".join(f"{s} {ms[s]:.2f}" for s in stages if s in ms)
    return f"; server means per request: {parts}, rest of the app {app:.2f} ms"


def _spinning_rows(variants: Result) -> list[str]:
    """The service's INFER_INTRA_OP_SPINNING both ways, when the run measured both (info)."""
    lines = []
    for variant, v in variants.items():
        runs = v.get("service_spinning", {})
        if "on" not in runs or "off" not in runs:
            continue
        on, off = runs["on"]["levels"], runs["off"]["levels"]
        top = max(off, key=int)
        raw = v["ort_spinning"]
        lines.append(
            f"| NER {VARIANT_NAMES[variant]}: INFER_INTRA_OP_SPINNING on vs off (info; off ships) "
            f"| c=1 p50 {on['1']['p50_ms']:.1f} vs {off['1']['p50_ms']:.1f} ms; c={top} "
            f"{on[top]['per_s']:.1f} vs {off[top]['per_s']:.1f}/s (per CPU-s "
            f"{on[top]['per_cpu_s']:.1f} vs {off[top]['per_cpu_s']:.1f}) | — "
            f"| raw session b=1 p50 {raw['on']['1']['p50_ms']:.1f} vs "
            f"{raw['off']['1']['p50_ms']:.1f} ms |"
        )
    return lines


def _identity_text(identity: Result) -> str:
    diff = identity.get("max_score_diff")
    scores = f", entity scores within {diff:.1e}" if diff is not None else ""
    return (
        f"{identity['identical_texts']} of {identity['texts']} texts identical "
        f"({identity['entities']} entities alone{scores})"
    )


def _identity_row(variants: Result) -> str:
    """INT8 answers alone vs in one batch of 32 (sent to the INT8 bundle in this run)."""
    v = variants["int8"]
    identity = v["identity"]
    served = "" if v["graph"]["quantization"] else " (fp32 graph served: INT8 refused)"
    reference = (
        f"fp32 bundle, same texts: {_identity_text(variants['fp32']['identity'])}"
        if "fp32" in variants
        else "—"
    )
    return (
        f"| INT8 bundle: entities identical for a text alone and in a batch of "
        f"{identity['texts']}{served} | {_identity_text(identity)} "
        f"| {_met(identity['identical'])} | {reference} |"
    )


def _posture_targets(postures: Result, fast_isa: bool) -> list[str]:
    lines = []
    load = postures["ner_under_load"]
    lines.append(
        f"| NER c=1 p50 while a {load['document_tokens']}-token posture document runs (info) "
        f"| {load['with_posture']['p50_ms']:.1f} ms vs {load['idle']['p50_ms']:.1f} ms idle "
        f"(document {load['posture_document_s']:.1f} s, all NER requests inside it: "
        f"{'yes' if load['fully_overlapped'] else 'no'}) | — | — |"
    )
    key = str(postures["max_length"])
    if key in postures["service"] and key in postures["torch"]:
        speedup = postures["torch"][key]["p50_ms"] / postures["service"][key]["p50_ms"]
        need = 3.0 if fast_isa else 2.0
        lines.append(
            f"| postures {key} tokens fp32 ≥ {need:.0f}× PyTorch eager "
            f"({_winner(postures['torch'], key)}) | {speedup:.2f}× "
            f"| {_met(speedup >= need)} | — |"
        )
    rss = postures["service_rss_kib"]["after_load"]["VmRSS"] / GIB
    lines.append(
        f"| service RSS with both bundles loaded < 2 GiB | {rss:.2f} GiB | {_met(rss < 2)} | — |"
    )
    return lines


def _longformer_targets(report: Result) -> list[str]:
    """fp32 and static INT8 speed-ups over HF eager at the longest length, with the GEMM
    fractions of the same run as the ceiling; dynamic INT8 as information."""
    longformer, flops, lines = report["longformer"], report["flops"], []
    row = max(longformer["rows"], key=lambda r: int(r["tokens"]))
    tokens = int(row["tokens"])
    rates = {k: flops.get(f"Longformer {k} {tokens} tokens") for k in ("PyTorch eager", "ORT fp32")}
    rates["INT8"] = flops.get(f"Longformer ORT static INT8 {tokens} tokens")
    gemm = report["gemm"]
    fp32_peak = max(gemm["fp32"]["ops_per_s"], gemm["numpy_fp32"]["ops_per_s"])
    for name, speedup, need in longformer_targets(report["host"], longformer):
        if name == "fp32":
            eager, ort = rates["PyTorch eager"], rates["ORT fp32"]
            ceiling = (
                f"matmul rate: ORT fp32 {ort['fraction']:.0%} of the fp32 peak, PyTorch eager "
                f"{eager['fraction']:.0%}"
                if eager and ort
                else "—"
            )
            parity = f"parity {row['diff']:.1e}"
        else:
            int8 = rates["INT8"]
            ratio = gemm["int8"]["ops_per_s"] / fp32_peak
            ceiling = (
                f"static INT8 at {int8['fraction']:.0%} of the INT8 peak; INT8/fp32 matmul peak "
                f"ratio {ratio:.2f}× (fp32 speed-up × that ratio: "
                f"{row['hf_s'] / row['ort_s'] * ratio:.1f}× if all GEMM)"
                if int8
                else "—"
            )
            q = row["int8"]["static"]
            parity = f"max abs prob diff {q['diff']:.1e}, {q['flips']} labels flipped"
        lines.append(
            f"| Longformer {tokens} tokens, {name} ≥ {need:g}× PyTorch eager "
            f"| {speedup:.2f}× ({parity}) | {_met(speedup >= need)} | {ceiling} |"
        )
    if "dynamic" in row["int8"]:
        q = row["int8"]["dynamic"]
        lines.append(
            f"| Longformer {tokens} tokens, dynamic INT8 vs PyTorch eager (info; its answers "
            f"depend on batch-mates) | {row['hf_s'] / q['s']:.2f}× (max abs prob diff "
            f"{q['diff']:.1e}, {q['flips']} labels flipped) | — | — |"
        )
    return lines


def _longformer_table(report: Result) -> list[str]:
    longformer = report["longformer"]
    config = longformer["config"]
    static = longformer["int8"].get("static", {})
    return [
        "",
        f"### Longformer: {longformer['size']}-sized classifier (random weights, hidden "
        f"{config['hidden_size']}, {config['num_hidden_layers']} layers, "
        f"{longformer['num_labels']} labels), HF eager vs the blocked graph in ORT",
        "",
        f"`bench.longformer_speed`: batch 1, {longformer['threads']} threads, median of "
        f"{longformer['repeats']} after a warm-up; static INT8 calibrated "
        f"{static.get('calibration', '—')} ({static.get('kept_fp32_nodes', '—')} products kept "
        "fp32), dynamic INT8 the export's per-call quantizer; differences are against HF eager.",
        "",
        *longformer_table(longformer),
    ]


def _posture_table(postures: Result, size: str) -> list[str]:
    lines = [
        "",
        f"### Postures: Longformer-{size}-sized (random weights, fp32, window "
        f"{postures['max_length']})",
        "",
        "| tokens | windows | service p50 s | service docs/s | PyTorch eager p50 s "
        "| PyTorch docs/s | speed-up | runs (service/PyTorch) |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for tokens, s in postures["service"].items():
        t = postures["torch"][tokens]
        lines.append(
            f"| {int(tokens):,} | {s['windows']} | {s['p50_ms'] / 1000:.2f} | {s['per_s']:.3f} "
            f"| {t['p50_ms'] / 1000:.2f} | {t['per_s']:.3f} | {t['p50_ms'] / s['p50_ms']:.2f}× "
            f"| {s['count']}/{t['count']} |"
        )
    rss = postures["service_rss_kib"]
    lines += [
        "",
        f"Peak RSS (VmHWM): service with both bundles {rss['end']['VmHWM'] / GIB:.2f} GiB "
        f"(RSS after loading {rss['after_load']['VmRSS'] / GIB:.2f} GiB); PyTorch process "
        f"{postures['torch']['vm_hwm_kib'] / GIB:.2f} GiB.",
    ]
    return lines


def _gemm_table(report: Result) -> list[str]:
    gemm = report["gemm"]
    n = gemm["fp32"]["n"]
    lines = [
        "",
        f"### Matmul peaks ({n}×{n}×{n}, best run at the start and end of this run) and "
        "fraction reached",
        "",
        f"fp32: ORT MatMul {gemm['fp32']['ops_per_s'] / 1e9:.0f} GFLOP/s, numpy "
        f"{gemm['numpy_fp32']['ops_per_s'] / 1e9:.0f} GFLOP/s (the fp32 peak is the higher); "
        f"INT8 MatMulInteger {gemm['int8']['ops_per_s'] / 1e9:.0f} GOP/s.",
        "",
        "| where | matmul rate (useful tokens) | peak used | fraction |",
        "|---|---:|---:|---:|",
    ]
    for name, f in report["flops"].items():
        lines.append(
            f"| {name} | {f['ops_per_s'] / 1e9:.0f} G/s | {f['peak'] / 1e9:.0f} G/s "
            f"| {f['fraction']:.0%} |"
        )
    return lines


def render(report: Result) -> str:
    start, end = report["load_average_start"], report["load_average_end"]
    lines = [
        f"## Benchmark ({report['mode']}, {report['started_at']}, {report['wall_s']:.0f} s)",
        "",
        describe(report["host"]),
        "",
        f"ISA flags: {' '.join(report['host']['flags']) or 'none'} (ratios and INT8 numerics "
        'depend on them: AVX2-only CPUs have no VNNI; README, "Benchmarks").',
        "",
        f"Load average (1/5/15 min) at start {start[0]:.1f}/{start[1]:.1f}/{start[2]:.1f}, "
        f"at end {end[0]:.1f}/{end[1]:.1f}/{end[2]:.1f} (2-core machine; higher means other "
        "jobs shared the CPUs).",
        "",
    ]
    if report["mode"] == "quick":
        lines += [
            "Quick mode: tiny models and a few requests, to check that every path runs; "
            "its ratios mean nothing.",
            "",
        ]
    if "ner" in report:
        lines += _ner_table(report)
        lines += _padding_table(report)
    lines += _targets(report)
    lines += _baselines(report)
    if "postures" in report:
        lines += _posture_table(report["postures"], report["size"])
    if "longformer" in report:
        lines += _longformer_table(report)
    lines += _gemm_table(report)
    return "\n".join(lines)
