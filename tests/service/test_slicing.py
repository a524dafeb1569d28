"""Large requests in slices, cancellation of abandoned work, Retry-After from the queued work."""

from __future__ import annotations

import asyncio
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from prometheus_client import REGISTRY

from families.classify.runtime import ClassifierPipeline
from families.ner.runtime import NerPipeline
from families.postures.spec import PostureManifest, PostureSpec
from service.bundle import read_manifest
from service.errors import DeadlineExceeded, NotReady, Overloaded
from service.runtime.batcher import Batcher, BatchLimits, plan_slices
from service.runtime.cancel import CallScope, Cancelled, active, current
from service.runtime.family import RequestOptions
from service.runtime.session import OnnxSession
from tests.helpers import TableSession


@dataclass
class Big:
    """A request of ``num_windows`` windows; a slice of it is a ``range`` of window indices."""

    value: int
    num_windows: int = 1
    width: int = 8
    num_texts: int = 1

    @property
    def tokens(self) -> int:
        return self.num_windows * self.width

    def split(self, max_windows: int, max_tokens: int) -> list[Part]:
        widths = [self.width] * self.num_windows
        return [Part(self, r) for r in plan_slices(widths, max_windows, max_tokens)]


@dataclass
class Part:
    parent: Big
    windows: range
    num_texts: int = 1

    @property
    def num_windows(self) -> int:
        return len(self.windows)

    @property
    def width(self) -> int:
        return self.parent.width

    @property
    def tokens(self) -> int:
        return len(self.windows) * self.parent.width


def terminable_wait(seconds: float) -> None:
    """Stand-in for an ONNX Runtime call: registers with the batch's scope, stops if told to."""
    options = SimpleNamespace(terminate=False)
    scope = current()
    if scope is not None:
        scope.attach(options)
    try:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if options.terminate:
                raise Cancelled("terminated")
            time.sleep(0.002)
    finally:
        if scope is not None:
            scope.detach(options)


class Model:
    """Runs whole requests and slices, each call taking ``seconds_per_token``; logs every call."""

    def __init__(self, seconds_per_token: float = 0.0) -> None:
        self.seconds_per_token = seconds_per_token
        self.calls: list[str] = []
        self.gate = threading.Event()
        self.gate.set()

    def run(self, items: list[Big]) -> list[int]:
        self.calls.append("+".join(str(i.value) for i in items))
        self.gate.wait(10)
        terminable_wait(self.seconds_per_token * sum(i.tokens for i in items))
        return [i.value * 10 for i in items]

    def run_slice(self, part: Part) -> list[int]:
        self.calls.append(f"{part.parent.value}[{part.windows.start}:{part.windows.stop}]")
        self.gate.wait(10)
        terminable_wait(self.seconds_per_token * part.tokens)
        return list(part.windows)

    @staticmethod
    def merge(item: Big, parts: list[list[int]]) -> tuple[int, list[int]]:
        return item.value * 10, [w for p in parts for w in p]

    def batcher(self, name: str, limits: BatchLimits) -> Batcher[Big, object]:
        return Batcher(name, self.run, limits, run_slice=self.run_slice, merge=self.merge)


def cancelled(model: str, unit: str) -> float:
    labels = {"model": model, "version": "", "unit": unit}
    return REGISTRY.get_sample_value("infer_cancelled_total", labels) or 0.0


def test_plan_slices_keeps_order_and_both_budgets() -> None:
    assert plan_slices([8] * 5, 2, 1000) == [range(0, 2), range(2, 4), range(4, 5)]
    assert plan_slices([10, 10, 30, 30], 10, 60) == [range(0, 2), range(2, 4)]
    assert plan_slices([100], 1, 10) == [range(0, 1)]  # one window over the budget still runs
    assert plan_slices([], 4, 100) == []


def test_short_requests_run_between_the_slices_of_a_large_one() -> None:
    model = Model()
    model.gate.clear()
    batcher = model.batcher("slices", BatchLimits(max_windows=2))

    async def scenario() -> tuple[object, object]:
        large = asyncio.create_task(batcher.submit(lambda: Big(1, num_windows=6)))
        while not model.calls:  # the first slice is running (held at the gate)
            await asyncio.sleep(0.001)
        short = asyncio.create_task(batcher.submit(lambda: Big(2)))
        while batcher.depth < 1:
            await asyncio.sleep(0.001)
        model.gate.set()
        return await large, await short

    large, short = asyncio.run(scenario())
    batcher.close()
    assert large == (10, [0, 1, 2, 3, 4, 5])  # every window once, in order, merged
    assert short == 20
    # The short request ran right after the first slice, not after the whole large request.
    assert model.calls == ["1[0:2]", "2", "1[2:4]", "1[4:6]"]


def test_a_request_within_one_batch_is_not_sliced() -> None:
    model = Model()
    batcher = model.batcher("whole", BatchLimits(max_windows=4))
    assert asyncio.run(batcher.submit(lambda: Big(3, num_windows=4))) == 30
    batcher.close()
    assert model.calls == ["3"]


def test_a_request_past_its_deadline_loses_its_remaining_slices() -> None:
    model = Model(seconds_per_token=0.1 / 16)  # 0.1 s per slice of 2 windows x 8 tokens
    batcher = model.batcher("expire", BatchLimits(max_windows=2))
    before = (cancelled("expire", "requests"), cancelled("expire", "windows"))

    async def scenario() -> None:
        with pytest.raises(DeadlineExceeded):
            await batcher.submit(lambda: Big(1, num_windows=200), timeout_s=0.35)
        await asyncio.sleep(0.3)  # the slice running at the deadline ends (or is terminated)
        started = time.monotonic()
        assert await batcher.submit(lambda: Big(2)) == 20
        assert time.monotonic() - started < 2.0  # the model was free: no 100 slices ahead

    asyncio.run(scenario())
    batcher.close()
    slices_run = [c for c in model.calls if c.startswith("1[")]
    assert len(slices_run) <= 6  # of 100
    assert cancelled("expire", "requests") == before[0] + 1
    assert cancelled("expire", "windows") - before[1] >= 200 - 2 * len(slices_run)


def test_the_running_call_is_terminated_when_its_only_caller_gives_up() -> None:
    model = Model(seconds_per_token=30.0 / 8)  # one 30-second call
    batcher = model.batcher("terminate", BatchLimits())
    before = cancelled("terminate", "onnx_calls")

    async def scenario() -> float:
        with pytest.raises(DeadlineExceeded):
            await batcher.submit(lambda: Big(1), timeout_s=0.2)
        started = time.monotonic()
        assert await batcher.submit(lambda: Big(2, width=0)) == 20
        return time.monotonic() - started

    waited = asyncio.run(scenario())
    batcher.close()
    assert waited < 10  # far below the 30 s the abandoned call would have taken
    assert cancelled("terminate", "onnx_calls") == before + 1


def test_a_shared_call_is_not_terminated_while_another_caller_waits() -> None:
    model = Model(seconds_per_token=0.4 / 16)
    model.gate.clear()
    batcher = model.batcher("shared", BatchLimits())

    async def scenario() -> object:
        first = asyncio.create_task(batcher.submit(lambda: Big(0, width=0)))
        while not model.calls:
            await asyncio.sleep(0.001)
        impatient = asyncio.create_task(batcher.submit(lambda: Big(1), timeout_s=0.2))
        patient = asyncio.create_task(batcher.submit(lambda: Big(2)))
        while batcher.depth < 2:
            await asyncio.sleep(0.001)
        model.gate.set()
        await first
        with pytest.raises(DeadlineExceeded):
            await impatient
        return await patient

    assert asyncio.run(scenario()) == 20
    batcher.close()
    assert model.calls == ["0", "1+2"]


def test_close_terminates_a_running_call_and_joins_the_worker() -> None:
    model = Model(seconds_per_token=60.0 / 8)
    batcher = model.batcher("close", BatchLimits())

    async def scenario() -> None:
        task = asyncio.create_task(batcher.submit(lambda: Big(1)))
        while not model.calls:
            await asyncio.sleep(0.001)
        started = time.monotonic()
        await asyncio.to_thread(batcher.close, 0.2)
        assert time.monotonic() - started < 5
        with pytest.raises(NotReady):
            await task

    asyncio.run(scenario())
    assert not batcher._thread.is_alive()


def test_retry_after_follows_the_work_queued_not_past_batch_durations() -> None:
    """Cheap requests first (fast batches), then a queue of expensive ones: Retry-After must
    predict the measured drain of that queue."""
    model = Model(seconds_per_token=0.001)
    batcher = Batcher("drain", model.run, BatchLimits(max_windows=1, max_queue=4))

    async def scenario() -> tuple[int, float]:
        for v in range(5):  # 10 tokens each: 10 ms calls, 10 characters each
            await batcher.submit(lambda v=v: Big(v, width=10), chars=10)
        model.gate.clear()
        running = asyncio.create_task(batcher.submit(lambda: Big(9, width=10), chars=10))
        while len(model.calls) < 6:
            await asyncio.sleep(0.001)
        queued = [
            asyncio.create_task(batcher.submit(lambda v=v: Big(v, width=1000), chars=1000))
            for v in range(4)
        ]
        while batcher.depth < 4:
            await asyncio.sleep(0.001)
        with pytest.raises(Overloaded) as refused:
            await batcher.submit(lambda: Big(99, width=10), chars=10)
        started = time.monotonic()
        model.gate.set()
        await asyncio.gather(running, *queued)
        return int(refused.value.headers["Retry-After"]), time.monotonic() - started

    retry_after, drained = asyncio.run(scenario())
    batcher.close()
    assert drained > 3.5  # 4 x 1,000 tokens x 1 ms
    assert drained / 2 <= retry_after <= 2 * drained + 1


def test_retry_after_is_clamped_to_the_deadline() -> None:
    model = Model(seconds_per_token=0.0005)
    batcher = Batcher("clamp", model.run, BatchLimits(max_queue=1, timeout_s=3))

    async def scenario() -> int:
        await batcher.submit(lambda: Big(1, width=100), chars=100)
        model.gate.clear()
        running = asyncio.create_task(batcher.submit(lambda: Big(2), chars=8))
        while len(model.calls) < 2:
            await asyncio.sleep(0.001)
        # tokenized before it is queued: 100,000 tokens, far more than 3 s of work
        queued = asyncio.create_task(batcher.submit(lambda: Big(3, width=10**5), chars=10))
        while batcher.depth < 1:
            await asyncio.sleep(0.001)
        with pytest.raises(Overloaded) as refused:
            await batcher.submit(lambda: Big(4), chars=8)
        model.gate.set()
        running.cancel()
        queued.cancel()
        return int(refused.value.headers["Retry-After"])

    assert asyncio.run(scenario()) == 3
    batcher.close()


def test_a_terminated_scope_stops_a_real_onnx_runtime_call(tiny_posture_bundle: Path) -> None:
    manifest = read_manifest(tiny_posture_bundle)
    session = OnnxSession(tiny_posture_bundle / manifest.onnx.file, manifest.onnx.output, 1)
    rng = np.random.default_rng(0)
    ids = rng.integers(5, 1000, size=(256, 600)).astype(np.int64)  # seconds of work
    inputs = {"input_ids": ids, "attention_mask": np.ones_like(ids)}
    scope = CallScope()

    def terminate_once_running() -> None:
        while not scope._running:  # the call has registered its RunOptions
            time.sleep(0.001)
        time.sleep(0.02)
        scope.terminate()

    threading.Thread(target=terminate_once_running, daemon=True).start()
    started = time.monotonic()
    with active(scope), pytest.raises(Cancelled):
        session.run(inputs)
    stopped_after = time.monotonic() - started
    # Not terminated, the same call completes (and takes longer than the terminated one).
    started = time.monotonic()
    assert session.run(inputs).shape[0] == 256
    assert stopped_after < time.monotonic() - started


# --- real pipelines: sliced and merged equals whole ---------------------------------------------


@pytest.mark.parametrize("max_windows", [1, 3, 8])
def test_sliced_ner_equals_the_request_run_whole(tiny_bundle: Path, max_windows: int) -> None:
    manifest = read_manifest(tiny_bundle)
    rng = np.random.default_rng(max_windows)
    table = rng.normal(0, 3, size=(30522, len(manifest.labels))).astype(np.float32)
    pipeline = NerPipeline(manifest, tiny_bundle, TableSession(table), max_batch_size=4)
    texts = ["tushar se 2 misal mangwao aur inayat cafe se pizza " * 6, "", "ek misal", "x " * 40]
    item = pipeline.prepare(texts)
    parts = item.split(max_windows, 10_000)
    assert len(parts) > 1 and sum(p.num_windows for p in parts) == item.num_windows
    assert all(p.num_windows <= max_windows for p in parts)
    merged = pipeline.merge(item, [pipeline.run_slice(p) for p in parts])
    whole = pipeline.predict(texts)
    assert merged.entities == whole.entities
    assert (merged.windows, merged.tokens) == (whole.windows, whole.tokens)


@pytest.mark.parametrize("aggregation", ["max", "mean"])
def test_sliced_postures_equal_the_request_run_whole(tiny_bundle: Path, aggregation: str) -> None:
    ner = read_manifest(tiny_bundle)
    labels = [f"Posture {i}" for i in range(5)]
    fields = ner.model_dump(exclude={"task", "ner", "labels"})
    spec = PostureSpec(thresholds=[0.5, 0.3, 0.7, 0.5, 0.9])
    manifest = PostureManifest.model_validate({**fields, "labels": labels, "postures": spec})
    table = np.random.default_rng(1).integers(-2, 3, size=(30522, 5)).astype(np.float32)

    class Summed(TableSession):
        def run(self, inputs: dict[str, np.ndarray]) -> np.ndarray:
            scores = self.table[inputs["input_ids"]] * inputs["attention_mask"][..., None]
            return scores.sum(axis=1).astype(np.float32) / 8

    pipeline = ClassifierPipeline(manifest, tiny_bundle, Summed(table), 4, 48, aggregation)  # type: ignore[arg-type]
    texts = ["the motion to dismiss is denied " * 12, "on appeal", "habeas corpus " * 20]
    item = pipeline.prepare(texts, RequestOptions(top_k=2))
    parts = item.split(2, 10_000)
    assert len(parts) > 2
    merged = pipeline.merge(item, [pipeline.run_slice(p) for p in parts])
    whole = pipeline.predict(texts, top_k=2)
    assert merged.labels == whole.labels and merged.windows == whole.windows
    np.testing.assert_allclose(merged.probabilities, whole.probabilities, rtol=0, atol=1e-12)


def test_the_slice_budget_cuts_requests_that_fit_one_batch() -> None:
    model = Model()
    batcher = model.batcher("slice-tokens", BatchLimits(max_windows=32, slice_tokens=16))
    result = asyncio.run(batcher.submit(lambda: Big(4, num_windows=5, width=8)))
    batcher.close()
    assert result == (40, [0, 1, 2, 3, 4])
    assert model.calls == ["4[0:2]", "4[2:4]", "4[4:5]"]  # 2 windows x 8 tokens per slice
