"""How much the benchmark runs: ``full`` (base-sized models, ~25 min) or ``quick`` (CI smoke)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Preset:
    size: str  # model size for default_models.random_checkpoint
    utterances: int  # distinct NER utterances (the same set for every contender)
    requests: dict[int, int]  # HTTP requests per concurrency level
    warmup_requests: int
    batch_sizes: tuple[int, ...]
    batch_budget_s: float  # per contender and batch size, after at least min_calls batches
    min_calls: int
    warmup_calls: int
    doc_lengths: tuple[int, ...]
    doc_repeats: int
    doc_budget_s: float  # per contender and length: stop repeating past this
    under_load_requests: int  # NER requests at c=1 while a posture document runs
    gemm_n: int
    gemm_repeats: int
    longformer_lengths: tuple[int, ...]  # bench.longformer_speed: eager vs ONNX fp32 vs INT8
    longformer_repeats: int
    # PyTorch/optimum baselines: quick tries all threads only (both wait policies / spinning);
    # full tries {1, all} threads as well.
    quick_baselines: bool = False


FULL = Preset(
    size="base",
    utterances=512,
    requests={1: 300, 8: 512, 32: 1024},
    warmup_requests=20,
    batch_sizes=(1, 8, 32),
    batch_budget_s=20.0,
    min_calls=5,
    warmup_calls=2,
    doc_lengths=(512, 2048, 4096, 10_000),
    doc_repeats=3,
    doc_budget_s=40.0,
    under_load_requests=60,
    gemm_n=2048,
    gemm_repeats=5,
    longformer_lengths=(512, 4096),  # ~4.5 min on 2 AVX2 cores, 4,096 being ~3 of them
    longformer_repeats=3,
)

QUICK = Preset(
    size="tiny",
    utterances=64,
    requests={1: 16, 8: 32, 32: 64},
    warmup_requests=2,
    batch_sizes=(1, 8, 32),
    batch_budget_s=1.0,
    min_calls=2,
    warmup_calls=1,
    doc_lengths=(64, 600, 1500),  # the tiny bundle's window is 600: 1,500 tokens = 3 windows
    doc_repeats=1,
    doc_budget_s=5.0,
    under_load_requests=8,
    gemm_n=512,
    gemm_repeats=3,
    longformer_lengths=(256,),
    longformer_repeats=1,
    quick_baselines=True,
)
