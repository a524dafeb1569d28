"""Micro-batching: merging, budgets, 429 on a full queue, deadlines, results equal to unbatched."""

from __future__ import annotations

import asyncio
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import REGISTRY

from families.classify.runtime import ClassifierPipeline
from families.ner.runtime import NerPipeline
from families.postures.spec import PostureManifest, PostureSpec
from service.bundle import read_manifest
from service.errors import DeadlineExceeded, Overloaded
from service.runtime.batcher import Batcher, BatchLimits
from service.runtime.family import RequestOptions
from service.runtime.session import MeteredSession, OnnxSession
from tests.helpers import TableSession


@dataclass
class Item:
    value: int
    num_windows: int = 1
    width: int = 8
    num_texts: int = 1

    @property
    def tokens(self) -> int:
        return self.num_windows * self.width

    def split(self, max_windows: int, max_tokens: int) -> list[Item]:
        return [self]


class GatedRunner:
    """Records every batch; the first one blocks until the test opens the gate."""

    def __init__(self) -> None:
        self.gate = threading.Event()
        self.calls: list[list[int]] = []

    def __call__(self, items: list[Item]) -> list[int]:
        self.calls.append([i.value for i in items])
        self.gate.wait(10)
        if any(i.value < 0 for i in items):
            raise ValueError("negative")
        return [i.value * 10 for i in items]


async def submit_all(batcher: Batcher[Item, int], items: list[Item]) -> list[object]:
    tasks = []
    for item in items:
        tasks.append(asyncio.create_task(batcher.submit(lambda item=item: item)))
        await asyncio.sleep(0)  # enqueue in this order
    return await asyncio.gather(*tasks, return_exceptions=True)


def run(coro):  # type: ignore[no-untyped-def]
    return asyncio.run(coro)


def test_requests_queued_while_busy_share_one_call_and_get_their_own_results() -> None:
    runner = GatedRunner()
    batcher = Batcher("merge", runner, BatchLimits(max_windows=32))

    async def scenario() -> list[object]:
        first = asyncio.create_task(batcher.submit(lambda: Item(0)))
        while not runner.calls:  # the worker is now busy with the first request
            await asyncio.sleep(0.001)
        rest = asyncio.create_task(submit_all(batcher, [Item(v) for v in range(1, 11)]))
        while batcher.depth < 10:
            await asyncio.sleep(0.001)
        runner.gate.set()
        return [await first, *await rest]

    assert run(scenario()) == [v * 10 for v in range(11)]
    assert runner.calls == [[0], list(range(1, 11))]  # 11 requests, 2 calls, order kept
    batcher.close()


def test_an_idle_model_starts_at_once_even_with_a_batch_wait() -> None:
    runner = GatedRunner()
    runner.gate.set()
    batcher = Batcher("idle", runner, BatchLimits(wait_s=0.5))

    async def timed() -> float:
        started = time.perf_counter()
        assert await batcher.submit(lambda: Item(3)) == 30
        return time.perf_counter() - started

    assert run(timed()) < 0.25  # far below the 0.5 s batch wait
    batcher.close()


@pytest.mark.parametrize(
    ("limits", "items", "expected"),
    [
        # window budget: 3 + 3 fit in 7, a third does not
        (
            BatchLimits(max_windows=7),
            [Item(v, num_windows=3) for v in (1, 2, 3, 4)],
            [[1, 2], [3, 4]],
        ),
        # padded-token budget: 2 windows x width 100 = 200 > 150
        (BatchLimits(max_tokens=150), [Item(1, width=50), Item(2, width=100)], [[1], [2]]),
        (BatchLimits(max_tokens=150), [Item(1, width=50), Item(2, width=70)], [[1, 2]]),
        # a request over the whole budget is never rejected: it runs alone
        (BatchLimits(max_windows=4), [Item(1, num_windows=9), Item(2)], [[1], [2]]),
    ],
)
def test_batches_stay_within_the_budget(
    limits: BatchLimits, items: list[Item], expected: list[list[int]]
) -> None:
    runner = GatedRunner()
    batcher = Batcher("budget", runner, limits)

    async def scenario() -> list[object]:
        blocker = asyncio.create_task(batcher.submit(lambda: Item(0)))
        while not runner.calls:
            await asyncio.sleep(0.001)
        rest = asyncio.create_task(submit_all(batcher, items))
        while batcher.depth < len(items):
            await asyncio.sleep(0.001)
        runner.gate.set()
        return [await blocker, *await rest]

    assert run(scenario()) == [0] + [i.value * 10 for i in items]
    assert runner.calls[1:] == expected
    batcher.close()


def test_full_queue_is_refused_with_retry_after_and_the_worker_goes_on() -> None:
    runner = GatedRunner()
    batcher = Batcher("full", runner, BatchLimits(max_queue=2))

    async def scenario() -> None:
        busy = asyncio.create_task(batcher.submit(lambda: Item(0)))
        while not runner.calls:
            await asyncio.sleep(0.001)
        queued = [asyncio.create_task(batcher.submit(lambda v=v: Item(v))) for v in (1, 2)]
        while batcher.depth < 2:
            await asyncio.sleep(0.001)
        with pytest.raises(Overloaded) as refused:
            await batcher.submit(lambda: Item(3))
        assert refused.value.status == 429 and refused.value.detail.limit == 2
        assert int(refused.value.headers["Retry-After"]) >= 1
        runner.gate.set()
        assert [await busy, *[await q for q in queued]] == [0, 10, 20]
        assert await batcher.submit(lambda: Item(4)) == 40

    run(scenario())
    batcher.close()


def test_deadline_answers_504_drops_expired_work_and_the_worker_survives() -> None:
    runner = GatedRunner()
    batcher = Batcher("deadline", runner, BatchLimits(timeout_s=0.2))

    async def scenario() -> None:
        busy = asyncio.create_task(batcher.submit(lambda: Item(0), timeout_s=10))
        while not runner.calls:
            await asyncio.sleep(0.001)
        started = time.perf_counter()
        with pytest.raises(DeadlineExceeded) as late:
            await batcher.submit(lambda: Item(1))  # queued behind a call that never ends
        assert late.value.status == 504 and time.perf_counter() - started < 1.0
        runner.gate.set()
        assert await busy == 0
        assert await batcher.submit(lambda: Item(2)) == 20

    run(scenario())
    assert [1] not in runner.calls  # the expired request never reached the model
    batcher.close()


def test_one_failing_request_does_not_fail_the_others_in_its_batch() -> None:
    runner = GatedRunner()
    batcher = Batcher("isolate", runner)

    async def scenario() -> list[object]:
        blocker = asyncio.create_task(batcher.submit(lambda: Item(0)))
        while not runner.calls:
            await asyncio.sleep(0.001)
        rest = asyncio.create_task(submit_all(batcher, [Item(1), Item(-1), Item(2)]))
        while batcher.depth < 3:
            await asyncio.sleep(0.001)
        runner.gate.set()
        return [await blocker, *await rest]

    out = run(scenario())
    assert out[:2] == [0, 10] and isinstance(out[2], ValueError) and out[3] == 20
    batcher.close()


def test_a_busy_model_does_not_hold_up_another_model() -> None:
    slow, fast = GatedRunner(), GatedRunner()
    fast.gate.set()
    postures, ner = Batcher("slow-model", slow), Batcher("fast-model", fast)

    async def scenario() -> None:
        long_document = asyncio.create_task(postures.submit(lambda: Item(1)))
        while not slow.calls:
            await asyncio.sleep(0.001)
        assert await asyncio.wait_for(ner.submit(lambda: Item(2)), 2) == 20
        assert not long_document.done()
        slow.gate.set()
        assert await long_document == 10

    run(scenario())
    labels = {"model": "fast-model", "version": "", "stage": "queue"}
    assert REGISTRY.get_sample_value("infer_stage_duration_seconds_count", labels) == 1
    postures.close()
    ner.close()


# --- real pipelines: merged calls give exactly what each request gives alone -------------------


class PostureTableSession(TableSession):
    """Context-free posture fake: logits are sums of integer per-token scores (exact in float)."""

    def run(self, inputs: dict[str, np.ndarray]) -> np.ndarray:
        scores = self.table[inputs["input_ids"]] * inputs["attention_mask"][..., None]
        return scores.sum(axis=1).astype(np.float32) / 8


@pytest.fixture(scope="module")
def vocab_words(tiny_bundle: Path) -> list[str]:
    from default_models.ner_training import encoder_dir

    words = (encoder_dir() / "vocab.txt").read_text().split("\n")[2000:3000]
    return [w for w in words if w.isalpha()]


def random_requests(rng: np.random.Generator, words: list[str], n: int) -> list[list[str]]:
    """Requests of 1-3 texts, from empty to several windows long."""
    return [
        [
            " ".join(rng.choice(words, size=int(rng.integers(0, 40))))
            for _ in range(rng.integers(1, 4))
        ]
        for _ in range(n)
    ]


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 12))
def test_merged_ner_equals_each_request_alone(tiny_bundle: Path, vocab_words, seed, n) -> None:
    manifest = read_manifest(tiny_bundle)
    rng = np.random.default_rng(seed)
    table = rng.normal(0, 3, size=(30522, len(manifest.labels))).astype(np.float32)
    pipeline = NerPipeline(manifest, tiny_bundle, TableSession(table), max_batch_size=8)
    requests = random_requests(rng, vocab_words, n)
    merged = pipeline.run_prepared([pipeline.prepare(r) for r in requests])
    for request, got in zip(requests, merged, strict=True):
        alone = pipeline.predict(request)
        assert got.entities == alone.entities
        assert (got.windows, got.tokens) == (alone.windows, alone.tokens)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 10))
def test_merged_postures_equal_each_request_alone(tiny_bundle: Path, vocab_words, seed, n) -> None:
    ner = read_manifest(tiny_bundle)
    labels = [f"Posture {i}" for i in range(5)]
    fields = ner.model_dump(exclude={"task", "ner", "labels"})
    spec = PostureSpec(thresholds=[0.5, 0.3, 0.7, 0.5, 0.9])
    manifest = PostureManifest.model_validate({**fields, "labels": labels, "postures": spec})
    rng = np.random.default_rng(seed)
    table = rng.integers(-2, 3, size=(30522, 5)).astype(np.float32)
    pipeline = ClassifierPipeline(manifest, tiny_bundle, PostureTableSession(table), 4, 48, "mean")
    requests = [[t or "x" for t in r] for r in random_requests(rng, vocab_words, n)]
    top_ks = [None if rng.random() < 0.5 else int(rng.integers(1, 4)) for _ in requests]
    prepared = [
        pipeline.prepare(r, RequestOptions(top_k=k)) for r, k in zip(requests, top_ks, strict=True)
    ]
    merged = pipeline.run_prepared(prepared)
    for request, top_k, got in zip(requests, top_ks, merged, strict=True):
        alone = pipeline.predict(request, top_k)
        assert got.labels == alone.labels and got.windows == alone.windows
        np.testing.assert_array_equal(got.probabilities, alone.probabilities)
        assert top_k is None or all(len(p) <= top_k for p in got.labels)


def test_concurrent_requests_on_the_real_tiny_model_match_unbatched(
    tiny_bundle: Path, vocab_words
) -> None:
    manifest = read_manifest(tiny_bundle)
    onnx = OnnxSession(tiny_bundle / manifest.onnx.file, manifest.onnx.output, 1)
    pipeline = NerPipeline(manifest, tiny_bundle, MeteredSession(onnx, "tiny-batch"), 32)
    requests = random_requests(np.random.default_rng(7), vocab_words, 24)
    expected = [pipeline.predict(r) for r in requests]
    batcher = Batcher("tiny-batch", pipeline.run_prepared)

    async def concurrently():
        return await asyncio.gather(
            *(batcher.submit(lambda r=r: pipeline.prepare(r)) for r in requests)
        )

    got = run(concurrently())
    batcher.close()
    labels = {"model": "tiny-batch", "version": "", "unit": "requests"}
    calls = REGISTRY.get_sample_value("infer_batch_size_count", labels)
    merged_requests = REGISTRY.get_sample_value("infer_batch_size_sum", labels)
    assert merged_requests == len(requests) and calls is not None and calls < len(requests)
    for alone, merged in zip(expected, got, strict=True):
        spans = [[(e.label, e.start, e.end) for e in t] for t in merged.entities]
        assert spans == [[(e.label, e.start, e.end) for e in t] for t in alone.entities]
        scores = [e.score for t in merged.entities for e in t]
        np.testing.assert_allclose(scores, [e.score for t in alone.entities for e in t], atol=1e-4)
