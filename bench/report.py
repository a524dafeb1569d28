"""The benchmark's Markdown table: NER contenders, targets, postures, GEMM peak fractions."""

from __future__ import annotations

from typing import Any

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


def _targets(report: Result) -> list[str]:
    lines = ["", "### Targets (ratios from this run)", "", "| target | measured | met |"]
    lines.append("|---|---|---|")
    if "ner" in report:
        ner = report["ner"]
        top = max(ner["service"]["levels"], key=int)
        big = max((b for b in ner["ort"] if b.isdigit()), key=int)
        svc = ner["service"]["levels"][top]
        torch, ort = ner["torch"][big], ner["ort"][big]
        vs_torch, vs_ort = svc["per_s"] / torch["per_s"], svc["per_s"] / ort["per_s"]
        cpu_torch = _ratio(svc["per_cpu_s"], torch["per_cpu_s"])
        cpu_ort = _ratio(svc["per_cpu_s"], ort["per_cpu_s"])
        lines.append(
            f"| NER c={top} throughput ≥ 5× PyTorch eager (b={big}) | {vs_torch:.2f}× "
            f"(per CPU-s {cpu_torch:.2f}×) | {'yes' if vs_torch >= 5 else 'no'} |"
        )
        lines.append(
            f"| NER c={top} throughput ≥ 85% of raw ORT {report['variant']} (b={big}) "
            f"| {vs_ort:.0%} (per CPU-s {cpu_ort:.0%}) | {'yes' if vs_ort >= 0.85 else 'no'} |"
        )
        p50, floor = ner["service"]["levels"]["1"]["p50_ms"], ner["ort"]["1"]["p50_ms"]
        lines.append(
            f"| NER c=1 p50 ≤ raw ORT b=1 + 3 ms | {p50:.1f} ms vs {floor:.1f} + 3 ms "
            f"| {'yes' if p50 <= floor + 3 else 'no'} |"
        )
    if "postures" in report:
        lines += _posture_targets(report["postures"])
    return lines


def _posture_targets(postures: Result) -> list[str]:
    lines = []
    load = postures["ner_under_load"]
    lines.append(
        f"| NER c=1 p50 while a {load['document_tokens']}-token posture document runs (info) "
        f"| {load['with_posture']['p50_ms']:.1f} ms vs {load['idle']['p50_ms']:.1f} ms idle "
        f"(document {load['posture_document_s']:.1f} s, all NER requests inside it: "
        f"{'yes' if load['fully_overlapped'] else 'no'}) | — |"
    )
    key = str(postures["max_length"])
    if key in postures["service"] and key in postures["torch"]:
        speedup = postures["torch"][key]["p50_ms"] / postures["service"][key]["p50_ms"]
        lines.append(
            f"| postures {key} tokens ≥ 3× PyTorch eager fp32 | {speedup:.2f}× "
            f"| {'yes' if speedup >= 3 else 'no'} |"
        )
    rss = postures["service_rss_kib"]["after_load"]["VmRSS"] / GIB
    lines.append(
        f"| service RSS with both bundles loaded < 2 GiB | {rss:.2f} GiB "
        f"| {'yes' if rss < 2 else 'no'} |"
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
        f"### Matmul peak (ORT, {n}×{n}×{n}, best run at the start and end of this run) and "
        "fraction reached",
        "",
        f"fp32 MatMul {gemm['fp32']['ops_per_s'] / 1e9:.0f} GFLOP/s; INT8 MatMulInteger "
        f"{gemm['int8']['ops_per_s'] / 1e9:.0f} GOP/s.",
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
        f"CPU: {report['cpu']['model']}, ISA flags: {' '.join(report['cpu']['flags']) or 'none'} "
        "(ratios and INT8 numerics depend on them: AVX2-only CPUs have no VNNI).",
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
    lines += _targets(report)
    if "postures" in report:
        lines += _posture_table(report["postures"], report["size"])
    lines += _gemm_table(report)
    return "\n".join(lines)
