"""Dynamic micro-batching per model: one worker thread, a bounded queue, per-request deadlines.

Requests for one model queue while its worker is busy; when the worker is free it takes the queued
requests (oldest first) up to the window and padded-token budget and runs them as one pipeline
call, so concurrent requests share ONNX Runtime calls. A request on an idle model starts at once.
The worker tokenizes each request itself (``prepare``) to learn its cost; a request that does not
fit stays at the head of the queue for the next batch, and one larger than the budget runs alone
(the pipeline splits it into ONNX calls). Each model has its own worker, so a long posture document
never holds up NER.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar

from service.errors import DeadlineExceeded, NotReady, Overloaded
from service.metrics import BATCH_SIZE, QUEUE_DEPTH, STAGE_LATENCY
from service.observability import tracing

log = logging.getLogger("service.batcher")


class Prepared(Protocol):
    """A tokenized request: enough to know what it costs before running it."""

    @property
    def num_texts(self) -> int: ...

    @property
    def num_windows(self) -> int: ...

    @property
    def width(self) -> int: ...


P = TypeVar("P", bound=Prepared)
R = TypeVar("R")


@dataclass(frozen=True)
class BatchLimits:
    max_windows: int = 32
    max_tokens: int = 16_384  # padded: windows x widest window
    max_queue: int = 128
    wait_s: float = 0.0  # extra wait for more requests, only when some are already queued
    timeout_s: float = 60.0  # default deadline per request, queue wait included


@dataclass
class _Job:
    prepare: Callable[[], Any]
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[Any]
    deadline: float
    enqueued: float = field(default_factory=time.monotonic)
    prepared: Any = None
    abandoned: bool = False  # set by the waiting coroutine when it gave up (deadline, cancel)
    trace: Any = field(default_factory=tracing.capture)  # the request's span (tracing on only)
    prepared_at: float = 0.0  # when prepare() (tokenization) ended


class Batcher(Generic[P, R]):
    """Gathers concurrent requests for one model into shared pipeline calls."""

    def __init__(
        self, name: str, run: Callable[[list[P]], list[R]], limits: BatchLimits | None = None
    ) -> None:
        self.name = name
        self._run = run
        self.limits = limits or BatchLimits()
        self._queue: deque[_Job] = deque()
        self._cond = threading.Condition()
        self._closed = False
        self._batch_seconds = 0.0  # moving averages, for Retry-After
        self._batch_jobs = 1.0
        self._depth = QUEUE_DEPTH.labels(name)
        self._thread = threading.Thread(target=self._serve, name=f"batcher-{name}", daemon=True)
        self._thread.start()

    async def submit(self, prepare: Callable[[], P], timeout_s: float | None = None) -> R:
        """Queue one request (``prepare`` tokenizes it, in the worker) and await its result."""
        timeout_s = self.limits.timeout_s if timeout_s is None else timeout_s
        loop = asyncio.get_running_loop()
        job = _Job(prepare, loop, loop.create_future(), time.monotonic() + timeout_s)
        with self._cond:
            if self._closed:
                raise NotReady(f"model {self.name} is shutting down")
            if len(self._queue) >= self.limits.max_queue:
                retry = self.retry_after_s()
                raise Overloaded(
                    f"model {self.name} has {len(self._queue)} requests queued (the limit); "
                    f"retry in {retry} s",
                    limit=self.limits.max_queue,
                    headers={"Retry-After": str(retry)},
                )
            self._queue.append(job)
            self._depth.set(len(self._queue))
            self._cond.notify()
        try:
            result: R = await asyncio.wait_for(job.future, timeout_s)
        except TimeoutError:
            job.abandoned = True
            raise DeadlineExceeded(
                f"no result from model {self.name} within {timeout_s:g} s",
                limit=math.ceil(timeout_s),
            ) from None
        except asyncio.CancelledError:
            job.abandoned = True
            raise
        return result

    def retry_after_s(self) -> int:
        """Seconds until the queue has likely drained: batches needed x recent batch duration."""
        batches = math.ceil((len(self._queue) + 1) / max(self._batch_jobs, 1.0))
        return max(1, math.ceil(batches * self._batch_seconds))

    @property
    def depth(self) -> int:
        return len(self._queue)

    def close(self, timeout_s: float = 5.0) -> None:
        """Stop taking requests; the worker finishes what is queued, then exits."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self._thread.join(timeout_s)

    # --- worker thread -------------------------------------------------------------------------

    def _serve(self) -> None:
        while True:
            try:
                batch = self._next_batch()
                if batch is None:
                    return
                if batch:
                    self._execute(batch)
            except Exception:  # the worker must outlive any one batch
                log.exception("batcher %s: unexpected error", self.name)

    def _pop(self, wait_s: float | None) -> _Job | None:
        """The oldest queued job; block up to ``wait_s`` (None: until one comes or closing)."""
        with self._cond:
            if not self._queue and not self._closed:
                self._cond.wait_for(lambda: self._queue or self._closed, wait_s)
            if not self._queue:
                return None
            job = self._queue.popleft()
            self._depth.set(len(self._queue))
            return job

    def _next_batch(self) -> list[_Job] | None:
        """Jobs for one pipeline call, oldest first, within the budget; None once closed."""
        first = self._take(None)
        if first is None:
            return None if self._closed else []
        batch, windows, width = [first], first.prepared.num_windows, first.prepared.width
        queued_before = self.depth > 0
        waited = False
        while True:
            job = self._take(0.0)
            if job is None:
                if queued_before and not waited and self.limits.wait_s > 0:
                    waited = True
                    job = self._take(self.limits.wait_s)
                if job is None:
                    return batch
            item = job.prepared
            grown, wider = windows + item.num_windows, max(width, item.width)
            if grown > self.limits.max_windows or grown * wider > self.limits.max_tokens:
                with self._cond:
                    self._queue.appendleft(job)  # already tokenized: first in the next batch
                    self._depth.set(len(self._queue))
                return batch
            batch.append(job)
            windows, width = grown, wider

    def _take(self, wait_s: float | None) -> _Job | None:
        """The next live job, tokenized; expired or failed ones are answered on the way."""
        while True:
            job = self._pop(wait_s)
            if job is None:
                return None
            if job.abandoned:
                continue
            if time.monotonic() > job.deadline:  # never spend compute on it
                self._settle(job, DeadlineExceeded(f"request expired in {self.name}'s queue"))
                continue
            if job.prepared is None:
                try:
                    job.prepared = job.prepare()
                    job.prepared_at = time.monotonic()
                except Exception as exc:
                    self._settle(job, exc)
                    continue
            return job

    def _execute(self, batch: list[_Job]) -> None:
        started = time.monotonic()
        for job in batch:
            STAGE_LATENCY.labels(self.name, "queue").observe(started - job.enqueued)
        BATCH_SIZE.labels(self.name, "requests").observe(len(batch))
        BATCH_SIZE.labels(self.name, "texts").observe(sum(j.prepared.num_texts for j in batch))
        try:
            results = self._run([j.prepared for j in batch])
        except Exception as exc:
            if len(batch) == 1:
                self._settle(batch[0], exc)
            else:  # find the request that fails; the others still get their answers
                log.warning("batch of %d failed (%s); running them one by one", len(batch), exc)
                for job in batch:
                    self._execute([job])
            return
        for job, result in zip(batch, results, strict=True):
            self._settle(job, result)
        seconds = time.monotonic() - started
        self._batch_seconds = 0.8 * self._batch_seconds + 0.2 * seconds
        self._batch_jobs = 0.8 * self._batch_jobs + 0.2 * len(batch)
        tracing.record_batch(self.name, batch, results, started)  # no-op unless tracing is on

    @staticmethod
    def _settle(job: _Job, outcome: object) -> None:
        def settle() -> None:
            if job.future.done():
                return
            if isinstance(outcome, BaseException):
                job.future.set_exception(outcome)
            else:
                job.future.set_result(outcome)

        with contextlib.suppress(RuntimeError):  # a closed loop: nobody is waiting any more
            job.loop.call_soon_threadsafe(settle)
