"""Dynamic micro-batching per model: one worker thread, a bounded queue, per-request deadlines.

Requests for one model queue while its worker is busy; when the worker is free it takes the queued
requests (oldest first) up to the window and padded-token budget and runs them as one pipeline
call, so concurrent requests share ONNX Runtime calls. A request on an idle model starts at once.
The worker tokenizes each request itself (``prepare``) to learn its cost; a request that does not
fit stays at the head of the queue for the next batch.

A request larger than one slice (the batch budget, or ``slice_tokens`` padded tokens if smaller) is
cut into **slices** (``Prepared.split``): one slice runs per
worker turn, then the request goes back to the tail of the queue, so requests that arrived
meanwhile run between its slices and wait at most about one slice; the slice results are
assembled at the end (``merge``). A request whose caller has given up (deadline, disconnect,
shutdown) loses its remaining slices, and a running ONNX Runtime call that only it waits for is
terminated (``service.runtime.cancel``). Each model has its own worker, so a long posture
document never holds up NER.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar

from service.errors import DeadlineExceeded, NotReady, Overloaded
from service.metrics import BATCH_SIZE, CANCELLED, QUEUE_DEPTH, STAGE_LATENCY
from service.observability import tracing
from service.runtime.cancel import CallScope, active

log = logging.getLogger("service.batcher")


class Prepared(Protocol):
    """A tokenized request: enough to know what it costs before running it, and to cut it."""

    @property
    def num_texts(self) -> int: ...

    @property
    def num_windows(self) -> int: ...

    @property
    def width(self) -> int: ...

    @property
    def tokens(self) -> int: ...

    def split(self, max_windows: int, max_tokens: int) -> Sequence[Any]:
        """Slices in order, each within the budget (at least one window); the batcher runs each
        with ``run_slice`` and hands the partial results to ``merge``."""
        ...


P = TypeVar("P", bound=Prepared)
R = TypeVar("R")


@dataclass(frozen=True)
class BatchLimits:
    max_windows: int = 32
    max_tokens: int = 16_384  # padded: windows x widest window
    max_queue: int = 128
    wait_s: float = 0.0  # extra wait for more requests, only when some are already queued
    timeout_s: float = 60.0  # default deadline per request, queue wait included
    # A request over this many padded tokens (or over the batch budget) runs in slices of at most
    # this size: it bounds how long a short request waits behind a large one. None: the batch's.
    slice_tokens: int | None = None

    @property
    def slice_budget(self) -> int:
        return min(self.max_tokens, self.slice_tokens or self.max_tokens)


def plan_slices(widths: Sequence[int], max_windows: int, max_tokens: int) -> list[range]:
    """Consecutive runs of windows (given their padded widths), each within both budgets."""
    slices: list[range] = []
    start, widest = 0, 0
    for i, width in enumerate(widths):
        grown, wider = i - start + 1, max(widest, width)
        if i > start and (grown > max_windows or grown * wider > max_tokens):
            slices.append(range(start, i))
            start, wider = i, width
        widest = wider
    if start < len(widths):
        slices.append(range(start, len(widths)))
    return slices


@dataclass(eq=False)
class _Job:
    prepare: Callable[[], Any]
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[Any]
    deadline: float
    estimate: float  # tokens expected before it is tokenized (for Retry-After)
    chars: int = 0
    enqueued: float = field(default_factory=time.monotonic)
    prepared: Any = None
    trace: Any = field(default_factory=tracing.capture)  # the request's span (tracing on only)
    prepared_at: float = 0.0  # when prepare() (tokenization) ended
    parts: deque[Any] | None = None  # slices still to run, when the request was cut
    partials: list[Any] = field(default_factory=list)
    started: bool = False
    counted: bool = False  # its cancelled work is in the metrics already
    abandoned: bool = False  # the waiting coroutine gave up (deadline, disconnect, shutdown)

    def remaining_tokens(self) -> float:
        if self.prepared is None:
            return self.estimate
        if self.parts is not None:
            return float(sum(p.tokens for p in self.parts))
        return float(self.prepared.tokens)

    def remaining_windows(self) -> int:
        if self.prepared is None:
            return 0
        if self.parts is not None:
            return sum(p.num_windows for p in self.parts)
        return int(self.prepared.num_windows)

    def item(self) -> Any:
        """What the next pipeline call runs for this job: its next slice, or all of it."""
        return self.parts[0] if self.parts is not None else self.prepared


@dataclass
class _Running:
    jobs: list[_Job]
    scope: CallScope


class Batcher(Generic[P, R]):
    """Gathers concurrent requests for one model into shared pipeline calls."""

    def __init__(
        self,
        name: str,
        run: Callable[[list[P]], list[R]],
        limits: BatchLimits | None = None,
        run_slice: Callable[[Any], Any] | None = None,
        merge: Callable[[P, list[Any]], R] | None = None,
    ) -> None:
        self.name = name
        self._run = run
        # Without these a large request runs whole (the pipeline splits it into ONNX calls).
        self._run_slice = run_slice
        self._merge = merge
        self.limits = limits or BatchLimits()
        self._queue: deque[_Job] = deque()
        self._cond = threading.Condition()
        self._closed = False
        self._running: _Running | None = None
        # Recent (tokens, seconds) per pipeline call and tokens per request: for Retry-After.
        self._recent: deque[tuple[float, float]] = deque(maxlen=32)
        self._sizes: deque[tuple[int, int]] = deque(maxlen=32)  # (tokens, chars) per request
        self._depth = QUEUE_DEPTH.labels(name)
        self._cancelled = {
            u: CANCELLED.labels(name, u) for u in ("requests", "windows", "onnx_calls")
        }
        self._thread = threading.Thread(target=self._serve, name=f"batcher-{name}", daemon=True)
        self._thread.start()

    async def submit(
        self, prepare: Callable[[], P], timeout_s: float | None = None, chars: int = 0
    ) -> R:
        """Queue one request (``prepare`` tokenizes it, in the worker) and await its result.

        ``chars`` (the request's characters) lets Retry-After estimate its cost before it is
        tokenized.
        """
        timeout_s = self.limits.timeout_s if timeout_s is None else timeout_s
        loop = asyncio.get_running_loop()
        with self._cond:
            estimate = self._estimate(chars)
            deadline = time.monotonic() + timeout_s
            job = _Job(prepare, loop, loop.create_future(), deadline, estimate, chars)
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
            self._abandon(job)
            raise DeadlineExceeded(
                f"no result from model {self.name} within {timeout_s:g} s",
                limit=math.ceil(timeout_s),
            ) from None
        except asyncio.CancelledError:
            self._abandon(job)
            raise
        return result

    def retry_after_s(self) -> int:
        """Seconds until the work queued now has likely run: its tokens over recent throughput.

        Tokens of requests not tokenized yet are estimated from their characters; throughput is
        tokens per second of pipeline calls over the last 32 calls. Clamped to [1, deadline].
        """
        with self._cond:
            queued = sum(j.remaining_tokens() for j in self._queue if not j.abandoned)
            if self._running is not None:
                queued += sum(j.remaining_tokens() for j in self._running.jobs)
            tokens = sum(t for t, _ in self._recent)
            seconds = sum(s for _, s in self._recent)
        ceiling = max(1, math.ceil(self.limits.timeout_s))
        if tokens <= 0 or seconds <= 0:
            return 1
        return min(ceiling, max(1, math.ceil(queued * seconds / tokens)))

    @property
    def depth(self) -> int:
        return len(self._queue)

    def abort(self, error: Exception) -> None:
        """Answer every queued and running request with ``error`` and stop the running call."""
        with self._cond:
            jobs = list(self._queue)
            self._queue.clear()
            self._depth.set(0)
            if self._running is not None:
                jobs += self._running.jobs
                if self._running.scope.terminate():
                    self._cancelled["onnx_calls"].inc()
        for job in jobs:
            if not job.abandoned:
                job.abandoned = True
                self._count_cancelled(job)
                self._settle(job, error)

    def close(self, timeout_s: float = 10.0) -> None:
        """Stop taking requests; the worker finishes what is queued, then exits (joined, so no
        thread is left inside ONNX Runtime when the interpreter exits)."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self._thread.join(timeout_s)
        if self._thread.is_alive():
            self.abort(NotReady(f"model {self.name} is shutting down"))
            self._thread.join(timeout_s)

    # --- called on the event loop when a caller gives up ---------------------------------------

    def _abandon(self, job: _Job) -> None:
        """Mark the job given up; if the running call serves only given-up jobs, terminate it."""
        with self._cond:
            job.abandoned = True
            running = self._running
            if running is None or job not in running.jobs:
                return
            if all(j.abandoned for j in running.jobs) and running.scope.terminate():
                self._cancelled["onnx_calls"].inc()

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

    def _push_front(self, job: _Job) -> None:
        with self._cond:
            self._queue.appendleft(job)  # already tokenized: first in the next batch
            self._depth.set(len(self._queue))

    def _requeue(self, job: _Job) -> None:
        """Back to the tail: whoever queued while a slice ran goes before the next slice."""
        with self._cond:
            self._queue.append(job)
            self._depth.set(len(self._queue))
            self._cond.notify()

    def _next_batch(self) -> list[_Job] | None:
        """Jobs for one pipeline call, oldest first, within the budget; None once closed.

        A sliced request's slice runs in a call of its own (its results are partial)."""
        first = self._take(None)
        if first is None:
            return None if self._closed else []
        if first.parts is not None:
            return [first]
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
            if job.parts is not None:
                self._push_front(job)
                return batch
            item = job.prepared
            grown, wider = windows + item.num_windows, max(width, item.width)
            if grown > self.limits.max_windows or grown * wider > self.limits.max_tokens:
                self._push_front(job)
                return batch
            batch.append(job)
            windows, width = grown, wider

    def _fits_one_slice(self, item: Prepared) -> bool:
        windows = item.num_windows
        limits = self.limits
        return windows <= limits.max_windows and windows * item.width <= limits.slice_budget

    def _take(self, wait_s: float | None) -> _Job | None:
        """The next live job, tokenized; expired or failed ones are answered on the way."""
        while True:
            job = self._pop(wait_s)
            if job is None:
                return None
            if job.abandoned:
                self._count_cancelled(job)
                continue
            if time.monotonic() > job.deadline:  # never spend compute on it
                self._count_cancelled(job)
                self._settle(job, DeadlineExceeded(f"request expired in {self.name}'s queue"))
                continue
            if job.prepared is None:
                try:
                    job.prepared = job.prepare()
                    job.prepared_at = time.monotonic()
                except Exception as exc:
                    self._settle(job, exc)
                    continue
                self._learn(job)
                sliceable = self._merge is not None and self._run_slice is not None
                if sliceable and not self._fits_one_slice(job.prepared):
                    limits = self.limits
                    job.parts = deque(job.prepared.split(limits.max_windows, limits.slice_budget))
            return job

    def _estimate(self, chars: int) -> float:
        """Tokens a request of ``chars`` characters likely has (recent requests' ratio); without
        characters, the recent mean per request."""
        tokens = sum(t for t, _ in self._sizes)
        if not chars:
            return tokens / len(self._sizes) if self._sizes else 32.0
        seen = sum(c for _, c in self._sizes)
        return chars * (tokens / seen if seen else 0.3)

    def _learn(self, job: _Job) -> None:
        """Remember this request's tokens per character, for requests not tokenized yet."""
        with self._cond:
            self._sizes.append((int(job.prepared.tokens), job.chars))

    def _count_cancelled(self, job: _Job) -> None:
        if job.counted:
            return
        job.counted = True
        self._cancelled["requests"].inc()
        self._cancelled["windows"].inc(job.remaining_windows())

    def _execute(self, batch: list[_Job]) -> None:
        started = time.monotonic()
        for job in batch:
            if not job.started:
                job.started = True
                STAGE_LATENCY.labels(self.name, "queue").observe(started - job.enqueued)
        items = [job.item() for job in batch]
        if batch[0].parts is None:
            BATCH_SIZE.labels(self.name, "requests").observe(len(batch))
            BATCH_SIZE.labels(self.name, "texts").observe(sum(i.num_texts for i in items))
        scope = CallScope()
        with self._cond:
            self._running = _Running(batch, scope)
        try:
            with active(scope):
                if batch[0].parts is not None and self._run_slice is not None:
                    results = [self._run_slice(items[0])]
                else:
                    results = self._run(items)
        except Exception as exc:
            if scope.terminated:  # every caller gave up: nobody to answer, nothing to retry
                for job in batch:
                    self._count_cancelled(job)
                return
            if len(batch) == 1:
                self._settle(batch[0], exc)
            else:  # find the request that fails; the others still get their answers
                log.warning("batch of %d failed (%s); running them one by one", len(batch), exc)
                for job in batch:
                    self._execute([job])
            return
        finally:
            with self._cond:
                self._running = None
        seconds = time.monotonic() - started
        self._recent.append((float(sum(i.tokens for i in items)), seconds))
        whole = [(j, r) for j, r in zip(batch, results, strict=True) if j.parts is None]
        for job, result in zip(batch, results, strict=True):
            if job.parts is None:
                self._settle(job, result)
                continue
            job.parts.popleft()
            job.partials.append(result)
            if job.parts:
                self._requeue(job)  # abandoned ones are dropped (and counted) when taken
                continue
            try:
                assert self._merge is not None
                merged = self._merge(job.prepared, job.partials)
            except Exception as exc:
                self._settle(job, exc)
                continue
            self._settle(job, merged)
            tracing.record_batch(self.name, [job], [merged], started)  # no-op unless tracing on
        if whole:  # last: a tracing failure can never skip the settling above
            tracing.record_batch(self.name, [j for j, _ in whole], [r for _, r in whole], started)

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
