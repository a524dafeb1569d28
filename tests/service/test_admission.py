"""Admission by work before the worker, shedding what cannot meet its deadline, and the order of
large requests (issue 21)."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from service.errors import LimitExceeded, Overloaded
from service.runtime.batcher import INLINE_CHARS, BatchLimits, Packing
from tests.service.test_slicing import Big, Model


def test_a_request_refused_at_tokenization_never_reaches_the_worker() -> None:
    """A slow tokenization that ends in 422 runs off the worker: a short request queued meanwhile
    is answered at once."""
    model = Model()
    batcher = model.batcher("refuse", BatchLimits())
    tokenizing = threading.Event()

    def huge() -> Big:
        tokenizing.set()
        time.sleep(1.5)
        raise LimitExceeded("over the token budget", field="texts", limit=1)

    async def scenario() -> float:
        refused = asyncio.create_task(batcher.submit(huge, chars=INLINE_CHARS + 1))
        while not tokenizing.is_set():
            await asyncio.sleep(0.001)
        started = time.monotonic()
        assert await batcher.submit(lambda: Big(2), chars=10) == 20
        waited = time.monotonic() - started
        with pytest.raises(LimitExceeded):
            await refused
        return waited

    waited = asyncio.run(scenario())
    batcher.close()
    assert waited < 0.5
    assert model.calls == ["2"]


def test_queued_work_over_the_token_bound_is_refused_with_retry_after() -> None:
    model = Model()
    model.gate.clear()
    batcher = model.batcher("tokens", BatchLimits(max_windows=2, max_queue_tokens=100))

    async def scenario() -> Overloaded:
        first = asyncio.create_task(batcher.submit(lambda: Big(1, num_windows=8)))  # 64 tokens
        while not model.calls:
            await asyncio.sleep(0.001)
        with pytest.raises(Overloaded) as refused:
            await batcher.submit(lambda: Big(2, num_windows=8))  # 48 queued + 64 > 100
        small = await asyncio.wait_for(
            asyncio.gather(batcher.submit(lambda: Big(3)), asyncio.sleep(0.05, model.gate.set())),
            10,
        )
        assert small[0] == 30
        await first
        return refused.value

    error = asyncio.run(scenario())
    batcher.close()
    assert error.detail.limit == 100 and int(error.headers["Retry-After"]) >= 1
    assert "tokens of work queued" in error.detail.message


def test_a_request_that_cannot_meet_its_deadline_is_shed_at_once() -> None:
    """1 ms per token, 2.5 s deadline, 1,000-token requests (1 s each): the first runs, the
    second fits behind it, the third would finish after 3 s: refused at once, not after 2.5 s."""
    model = Model(seconds_per_token=0.001)
    limits = BatchLimits(max_windows=25, timeout_s=2.5, shed=True)
    batcher = model.batcher("shed", limits)

    async def scenario() -> tuple[list[object], float]:
        await batcher.submit(lambda: Big(0, num_windows=20))  # learn the throughput
        tasks = []
        for value in (1, 2):
            tasks.append(
                asyncio.create_task(batcher.submit(lambda v=value: Big(v, num_windows=125)))
            )
            await asyncio.sleep(0.01)
        started = time.monotonic()
        with pytest.raises(Overloaded) as refused:
            await batcher.submit(lambda: Big(3, num_windows=125))
        shed_after = time.monotonic() - started
        assert "deadline" in refused.value.detail.message
        assert 1 <= int(refused.value.headers["Retry-After"]) <= 2
        return list(await asyncio.gather(*tasks, return_exceptions=True)), shed_after

    results, shed_after = asyncio.run(scenario())
    batcher.close()
    assert shed_after < 0.2
    assert [r[0] for r in results] == [10, 20]  # type: ignore[index]


@pytest.mark.parametrize(("order", "first_done"), [("deadline", 1), ("round-robin", None)])
def test_deadline_order_finishes_large_requests_one_after_another(
    order: str, first_done: int | None
) -> None:
    model = Model()
    model.gate.clear()
    batcher = model.batcher(order, BatchLimits(max_windows=2, order=order))
    done: list[int] = []

    async def scenario() -> None:
        async def one(value: int) -> None:
            await batcher.submit(lambda: Big(value, num_windows=6))
            done.append(value)

        first = asyncio.create_task(one(1))
        while not model.calls:
            await asyncio.sleep(0.001)
        second = asyncio.create_task(one(2))
        while batcher.depth < 1:
            await asyncio.sleep(0.001)
        model.gate.set()
        await asyncio.gather(first, second)

    asyncio.run(scenario())
    batcher.close()
    slices = [c.split("[")[0] for c in model.calls]
    if first_done:
        assert slices == ["1", "1", "1", "2", "2", "2"]
    else:
        assert slices == ["1", "2", "1", "2", "1", "2"]
    assert done == [1, 2]


def test_packing_is_the_batch_budget() -> None:
    packing = Packing(max_windows=4, max_tokens=64)
    assert packing.add(Big(0, num_windows=1, width=100))  # the first always joins
    assert not packing.add(Big(1, num_windows=1, width=8))  # 2 x 100 > 64
    fresh = Packing(max_windows=4, max_tokens=64)
    assert all(fresh.add(Big(i, num_windows=1, width=16)) for i in range(4))
    assert not fresh.add(Big(5, num_windows=1, width=8))  # a fifth window


def test_short_requests_are_not_refused_for_large_work_they_do_not_wait_behind() -> None:
    """A whole request waits for the queued whole ones and one call (slices interleave), so a
    large request's unrun slices count against another large one, never against a short one
    (make faults, maximal_ner: every short request was 429 while a maximal one ran)."""
    model = Model()
    model.gate.clear()
    batcher = model.batcher("interleave", BatchLimits(max_windows=2, max_queue_tokens=100))

    async def scenario() -> tuple[int, Overloaded]:
        large = asyncio.create_task(batcher.submit(lambda: Big(1, num_windows=40)))  # 320 tokens
        while not model.calls:
            await asyncio.sleep(0.001)
        short = asyncio.create_task(batcher.submit(lambda: Big(3)))  # 8 tokens
        with pytest.raises(Overloaded) as refused:
            await batcher.submit(lambda: Big(2, num_windows=40))
        model.gate.set()
        answered = await asyncio.wait_for(short, 10)
        await large
        return answered, refused.value

    answered, error = asyncio.run(scenario())
    batcher.close()
    assert answered == 30
    assert "tokens of work queued" in error.detail.message


def test_a_burst_of_large_requests_is_tokenized_not_refused_by_default() -> None:
    """32 large requests arriving together on an idle model all wait for the tokenizer thread at
    the default cap (INFER_MAX_TOKENIZING, 32); a cap of 4 refuses most of the same burst."""

    def burst(limits: BatchLimits) -> list[object]:
        model = Model()
        batcher = model.batcher("burst", limits)

        def slow() -> Big:
            time.sleep(0.01)  # the tokenizer thread holds the others back meanwhile
            return Big(1)

        async def scenario() -> list[object]:
            calls = [batcher.submit(slow, chars=INLINE_CHARS + 1) for _ in range(32)]
            return await asyncio.gather(*calls, return_exceptions=True)

        try:
            return asyncio.run(scenario())
        finally:
            batcher.close()

    assert BatchLimits().max_tokenizing == 32
    assert all(answer == 10 for answer in burst(BatchLimits()))
    capped = burst(BatchLimits(max_tokenizing=4))
    assert sum(isinstance(a, Overloaded) for a in capped) == 28
