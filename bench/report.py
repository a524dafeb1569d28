"""The benchmark's Markdown table: NER contenders, targets, postures, GEMM peak fractions."""

from __future__ import annotations

from typing import Any

from bench.host import describe, fast_isa

Result = dict[str, Any]
GIB = 2**20  # KiB per GiB


def _row(name: str, setting: str, s: Result, unit: str = "ms") -> str:
    scale = 1.0 if unit == "ms" else 1 / 1000
    return (
        f"| {name} | {setting} | {s['p50_ms'] * scale:.1f} | {s['p95_ms'] * scale:.1f} "
        f"| {s['p99_ms'] * scale:.1f} | {s['per_s']:.1f} | {s.get('per_cpu_s', 0):.1f} |"
    )


def _ner_table(report: Result) -> list[str]:
    ner = report["ner"]
    lines = [
        f"### NER: BERT-{report['size']}-sized BERT-CRF (random weights), graph "
        f"{report['variant_note']}; {report['utterances']} utterances of 8-40 tokens",
        "",
        "Service rows: one utterance per HTTP request, `c` clients in a closed loop. Other rows: "
        "in-process batches of `b` utterances (latency = one batch). Per CPU-s: utterances per "
        "CPU-second the contender used (service: server process + load generator), which other "
        "jobs on the box disturb less than wall time.",
        "",
        "| contender | setting | p50 ms | p95 ms | p99 ms | utterances/s | per CPU-s |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for c, s in ner["service"]["levels"].items():
        lines.append(_row("service over HTTP", f"c={c}", s))
    names = {
        "torch": "PyTorch eager fp32 + pytorch-crf",
        "optimum": f"optimum ORTModel + pipeline ({report['variant']})",
        "ort": f"raw ORT session ({report['variant']}, pre-tokenized)",
    }
    for key, name in names.items():
        for b, s in ner[key].items():
            if b.isdigit():
                lines.append(_row(name, f"b={b}", s))
    return lines


def _ratio(a: float, b: float) -> float:
    return a / b if b else float("nan")


def _met(ok: bool) -> str:
    return "met" if ok else "missed"


def _fast_isa(report: Result) -> bool:
    return fast_isa(report["host"])


def _padding_table(report: Result) -> list[str]:
    """Useful vs padded tokens: the service (its own metrics) and the raw session's two plans."""
    ner = report["ner"]
    top = max(ner["service"]["levels"], key=int)
    lines = [
        "",
        "### Padding: useful vs padded token positions computed",
        "",
        "| where | useful tokens | padded tokens | padded share | ONNX calls per batch "
        "| utterances/s |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for c, level in ner["service"]["levels"].items():
        tokens = level.get("call_tokens")
        if tokens:
            total = tokens["useful"] + tokens["padding"]
            lines.append(
                f"| service c={c} (`infer_call_tokens_total`) | {tokens['useful']:,.0f} "
                f"| {tokens['padding']:,.0f} | {_ratio(tokens['padding'], total):.1%} | — "
                f"| {level['per_s']:.1f} |"
            )
    for name, r in ner.get("buckets", {}).items():
        if not isinstance(r, dict):
            continue
        plan = "one padded call" if not name.isdigit() else f"length buckets ({name} tokens/call)"
        lines.append(
            f"| raw ORT b={max(ner['ort'], key=lambda b: int(b) if b.isdigit() else 0)} through "
            f"`run_rows`, {plan} | — | — | {r['padded_fraction']:.1%} "
            f"| {r['calls_per_batch']:.1f} | {r['per_s']:.1f} |"
        )
    lines.append(f"\n(service c={top} is the level the targets use.)")
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
    return lines


def _ner_targets(report: Result) -> list[str]:
    ner, flops, lines = report["ner"], report["flops"], []
    top = max(ner["service"]["levels"], key=int)
    big = max((b for b in ner["ort"] if b.isdigit()), key=int)
    svc = ner["service"]["levels"][top]
    torch, ort = ner["torch"][big], ner["ort"][big]
    bucketed = flops.get(f"raw ORT b={big}, length buckets")
    service_flops = flops[f"service c={top}"]
    if report["variant"] == "fp32":
        ceiling = (
            f"raw session b={big} in length buckets: {bucketed['fraction']:.0%} of the peak"
            if bucketed
            else "—"
        )
        lines.append(
            f"| NER c={top}: useful-token matmul rate ≥ 80% of the host's fp32 peak "
            f"| {service_flops['fraction']:.0%} ({service_flops['ops_per_s'] / 1e9:.0f} of "
            f"{service_flops['peak'] / 1e9:.0f} GFLOP/s) "
            f"| {_met(service_flops['fraction'] >= 0.8)} | {ceiling} |"
        )
    else:
        vs_ort = svc["per_s"] / ort["per_s"]
        lines.append(
            f"| NER c={top}: ≥ 90% of the raw INT8 session b={big} | {vs_ort:.0%} "
            f"| {_met(vs_ort >= 0.9)} | — |"
        )
    need = 5.0 if _fast_isa(report) else 2.0
    vs_torch = svc["per_s"] / torch["per_s"]
    best_raw = max(
        [ort["per_s"]]
        + [r["per_s"] for r in ner.get("buckets", {}).values() if isinstance(r, dict)]
    )
    lines.append(
        f"| NER c={top} throughput ≥ {need:.0f}× PyTorch eager b={big} "
        f"({'AVX-512/VNNI/AMX' if need == 5 else 'AVX2-only'} host) | {vs_torch:.2f}× "
        f"(per CPU-s {_ratio(svc['per_cpu_s'], torch['per_cpu_s']):.2f}×) "
        f"| {_met(vs_torch >= need)} | best raw session {best_raw / torch['per_s']:.2f}× |"
    )
    lines.append(
        f"| NER c={top} service vs raw session b={big} (one padded call; info) "
        f"| {svc['per_s'] / ort['per_s']:.0%} (per CPU-s "
        f"{_ratio(svc['per_cpu_s'], ort['per_cpu_s']):.0%}) | — | — |"
    )
    p50, floor = ner["service"]["levels"]["1"]["p50_ms"], ner["ort"]["1"]["p50_ms"]
    lines.append(
        f"| NER c=1 p50 ≤ raw session b=1 + 2 ms | {p50:.1f} ms vs {floor:.1f} + 2 ms "
        f"| {_met(p50 <= floor + 2)} | raw session b=1 {floor:.1f} ms; service overhead "
        f"{p50 - floor:.1f} ms |"
    )
    lines.append(
        f"| NER c=1 p50 vs PyTorch eager b=1 (info) | "
        f"{ner['torch']['1']['p50_ms'] / p50:.2f}× faster | — | — |"
    )
    return lines


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
            f"| postures {key} tokens fp32 ≥ {need:.0f}× PyTorch eager | {speedup:.2f}× "
            f"| {_met(speedup >= need)} | — |"
        )
    rss = postures["service_rss_kib"]["after_load"]["VmRSS"] / GIB
    lines.append(
        f"| service RSS with both bundles loaded < 2 GiB | {rss:.2f} GiB | {_met(rss < 2)} | — |"
    )
    return lines


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
    if "postures" in report:
        lines += _posture_table(report["postures"], report["size"])
    lines += _gemm_table(report)
    return "\n".join(lines)
