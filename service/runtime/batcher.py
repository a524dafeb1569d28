"""Dynamic micro-batching per model: one worker thread, a bounded queue, per-request deadlines.

Requests for one model queue while its worker is busy; when the worker is free it takes the queued
requests (oldest first) up to the window and padded-token budget and runs them as one pipeline
call, so concurrent requests share ONNX Runtime calls. A request on an idle model starts at once.

**Admission by work, before the worker.** A request is tokenized (``prepare``) before it is queued:
small ones (at most ``INLINE_CHARS`` characters) at once, larger ones on the model's tokenizer
thread (at most ``max_tokenizing`` waiting there, 429 beyond), never on the worker, so a request
refused for its size (422) costs the model's batch loop nothing. Once its cost is known it is
admitted only if the work queued for the model stays within ``max_queue_tokens`` and, when
``shed`` is on, if it can still finish before its deadline at the model's recent throughput
(work ahead of it / tokens per second); otherwise it is refused at once with 429 and a
Retry-After that says when the work ahead will have drained enough (docs/reliability.md).

A request larger than one slice (the batch budget, or ``slice_tokens`` padded tokens if smaller) is
cut into **slices** (``Prepared.split``): one slice runs per
worker turn, then the request goes back to the tail of the queue, so requests that arrived
meanwhile run between its slices and wait at most about one slice; the slice results are
assembled at the end (``merge``). Large requests take turns with the whole ones: one slice, then
one batch of whatever whole requests are queued. Among large requests, ``order`` picks whose slice
runs next: ``deadline`` (earliest deadline first, i.e. first come first served for one deadline:
admitted requests finish one after another) or ``round-robin`` (every large request advances one
slice per turn: under overload all of them finish late). A request whose caller has given up
(deadline, disconnect, shutdown) loses its remaining slices, and a running ONNX Runtime call that
only it waits for is terminated (``service.runtime.cancel``). Each model has its own worker, so a
long posture document never holds up NER.
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
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar

from service.errors import DeadlineExceeded, NotReady, Overloaded
from service.metrics import (
    BATCH_SIZE,
    CANCELLED,
    QUEUE_DEPTH,
    QUEUED_TOKENS,
    SHED,
    SHED_REASONS,
    STAGE_LATENCY,
)
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
    # Admission by work: most tokens queued (waiting requests and unrun slices); None: no bound.
    max_queue_tokens: int | None = None
    # Refuse at once a request that the work ahead of it keeps from finishing before its deadline.
    shed: bool = False
    order: str = "deadline"  # or "round-robin": which large request's slice runs next
    max_tokenizing: int = 32  # large requests waiting for (or in) tokenization; 429 beyond

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


class Packing:
    """The batch budget, once for the service and the batch scorer: items join a batch while the
    windows stay within ``max_windows`` and windows x widest window within ``max_tokens``; the
    first item always joins (one over the budget runs alone)."""

    def __init__(self, max_windows: int, max_tokens: int) -> None:
        self.max_windows = max_windows
        self.max_tokens = max_tokens
        self.windows = 0
        self.width = 0
        self.count = 0

    def add(self, item: Prepared) -> bool:
        """Take ``item`` into the batch if it fits (always the first); False: start another."""
        grown, wider = self.windows + item.num_windows, max(self.width, item.width)
        if self.count and (grown > self.max_windows or grown * wider > self.max_tokens):
            return False
        self.windows, self.width, self.count = grown, wider, self.count + 1
        return True


# Requests of at most this many characters are tokenized on the event loop as they arrive (well
# under a millisecond); larger ones on the model's tokenizer thread.
INLINE_CHARS = 4096
# A request is admitted only if the estimate says it finishes within this share of the time left
# to its deadline: throughput measured over the last calls varies (shared cores, other models),
# and an admitted request that then expires (504) wasted its work; measured in ``make faults``
# (overload): without headroom 2 of 7 admitted large requests expired.
SHED_HEADROOM = 0.85


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
    prepared_tokens: float = 0.0  # prepared.tokens, read once (admission sums it per request)
    trace: Any = field(default_factory=tracing.capture)  # the request's span (tracing on only)
    prepared_at: float = 0.0  # when prepare() (tokenization) ended
    parts: deque[Any] | None = None  # slices still to run, when the request was cut
    partials: list[Any] = field(default_factory=list)
    started: bool = False
    counted: bool = False  # its cancelled work is in the metrics already
    abandoned: bool = False  # the waiting coroutine gave up (deadline, disconnect, shutdown)
    alone: bool = False  # its batch failed while decoding: it runs again in a batch of its own

    def remaining_tokens(self) -> float:
        if self.prepared is None:
            return self.estimate
        if self.parts is not None:
            return float(sum(p.tokens for p in self.parts))
        return self.prepared_tokens

    def set_prepared(self, prepared: Any) -> None:
        """Record the tokenized request (and its cost, which every later admission reads)."""
        self.prepared, self.prepared_tokens = prepared, float(prepared.tokens)
        self.prepared_at = time.monotonic()

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
        version: str = "",
        phases: tuple[Callable[[list[P]], Any], Callable[[list[P], Any], list[R]]] | None = None,
    ) -> None:
        """``name`` and ``version``: the model version whose metrics it records."""
        self.name = name
        self.version = version
        self._run = run
        # ``run`` in two halves (ONNX calls, then decoding), when the runtime has them: while
        # requests wait, a batch's decoding runs on the finisher thread as the next batch's
        # ONNX calls run here (the GIL is free during them); an idle model decodes inline.
        self._phases = phases
        self._finisher = ThreadPoolExecutor(1, thread_name_prefix=f"finish-{name}")
        # Without these a large request runs whole (the pipeline splits it into ONNX calls).
        self._run_slice = run_slice
        self._merge = merge
        self.limits = limits or BatchLimits()
        self._queue: deque[_Job] = deque()  # whole requests, first come first served
        self._large: deque[_Job] = deque()  # requests cut in slices (``order`` picks among them)
        self._large_turn = True  # whether a slice runs next (when both kinds wait)
        self._cond = threading.Condition()
        self._closed = False
        self._running: _Running | None = None
        self._tokenizing = 0
        self._tokenizer = ThreadPoolExecutor(1, thread_name_prefix=f"tokenize-{name}")
        # Recent (tokens, seconds) per pipeline call and tokens per request: for Retry-After.
        self._recent: deque[tuple[float, float]] = deque(maxlen=32)
        self._sizes: deque[tuple[int, int]] = deque(maxlen=32)  # (tokens, chars) per request
        self._depth = QUEUE_DEPTH.labels(name, version)
        self._queued_tokens = QUEUED_TOKENS.labels(name, version)
        self._shed = {reason: SHED.labels(name, version, reason) for reason in SHED_REASONS}
        self._cancelled = {
            u: CANCELLED.labels(name, version, u) for u in ("requests", "windows", "onnx_calls")
        }
        self._thread = threading.Thread(target=self._serve, name=f"batcher-{name}", daemon=True)
        self._thread.start()

    async def submit(
        self, prepare: Callable[[], P], timeout_s: float | None = None, chars: int = 0
    ) -> R:
        """Tokenize one request (``prepare``, never on the worker), admit it by its work, queue
        it and await its result.

        ``chars`` (the request's characters) picks where it is tokenized and lets Retry-After
        estimate its cost before it is tokenized.
        """
        timeout_s = self.limits.timeout_s if timeout_s is None else timeout_s
        loop = asyncio.get_running_loop()
        deadline = time.monotonic() + timeout_s
        with self._cond:
            if self._closed:
                raise NotReady(f"model {self.name} is shutting down")
            if self.depth >= self.limits.max_queue:
                self._shed["requests"].inc()
                retry = self._retry_after_locked()
                raise Overloaded(
                    f"model {self.name} has {self.depth} requests queued (the limit); "
                    f"retry in {retry} s",
                    limit=self.limits.max_queue,
                    headers={"Retry-After": str(retry)},
                )
        job = _Job(prepare, loop, loop.create_future(), deadline, self._estimate(chars), chars)
        try:
            async with asyncio.timeout_at(loop.time() + timeout_s):
                job.set_prepared(await self._tokenize(prepare, chars))
                self._learn(job)
                self._admit(job)
                result: R = await job.future
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

    async def _tokenize(self, prepare: Callable[[], P], chars: int) -> P:
        """``prepare()`` now for a small request, else on the model's tokenizer thread."""
        if chars <= INLINE_CHARS:
            return prepare()
        with self._cond:
            if self._tokenizing >= self.limits.max_tokenizing:
                self._shed["tokenizing"].inc()
                raise Overloaded(
                    f"model {self.name} is tokenizing {self._tokenizing} large requests (the "
                    "limit); retry in 1 s",
                    limit=self.limits.max_tokenizing,
                    headers={"Retry-After": "1"},
                )
            self._tokenizing += 1

        def run() -> P:
            try:
                return prepare()
            finally:
                with self._cond:
                    self._tokenizing -= 1

        return await asyncio.get_running_loop().run_in_executor(self._tokenizer, run)

    def _admit(self, job: _Job) -> None:
        """Queue a tokenized job, or refuse it (429) when the work queued leaves no room."""
        sliceable = self._merge is not None and self._run_slice is not None
        if sliceable and not self._fits_one_slice(job.prepared):
            limits = self.limits
            job.parts = deque(job.prepared.split(limits.max_windows, limits.slice_budget))
        own = job.remaining_tokens()
        with self._cond:
            if self._closed:
                raise NotReady(f"model {self.name} is shutting down")
            queued = self._queued_locked()
            busy = queued > 0 or self._running is not None
            cap = self.limits.max_queue_tokens
            # A whole request waits only for the whole requests queued and one call (slices of
            # large ones interleave), so only that work counts against it; a sliced one waits
            # for everything.
            waiting = queued if job.parts is not None else self._ahead_locked(job)
            if busy and cap is not None and waiting + own > cap:
                rate = self._rate_locked()
                retry = self._seconds(waiting + own - cap, rate)
                self._shed["tokens"].inc()
                raise Overloaded(
                    f"model {self.name} has {queued:.0f} tokens of work queued; this request's "
                    f"{own:.0f} would pass the limit of {cap}; retry in {retry} s",
                    limit=cap,
                    headers={"Retry-After": str(retry)},
                )
            rate = self._rate_locked()
            if busy and self.limits.shed and rate > 0:
                ahead = self._ahead_locked(job)
                left = job.deadline - time.monotonic()
                finish = (ahead + own) / rate
                if finish > left * SHED_HEADROOM:
                    retry = self._seconds(ahead + own - left * SHED_HEADROOM * rate, rate)
                    self._shed["deadline"].inc()
                    raise Overloaded(
                        f"model {self.name} cannot finish this request within its deadline: "
                        f"{ahead:.0f} tokens of work are ahead of its {own:.0f} (about "
                        f"{finish:.1f} s at {rate:.0f} tokens/s, {max(left, 0):.1f} s left); "
                        f"retry in {retry} s",
                        limit=math.ceil(self.limits.timeout_s),
                        headers={"Retry-After": str(retry)},
                    )
            (self._large if job.parts is not None else self._queue).append(job)
            self._gauges_locked()
            self._cond.notify()

    def _ahead_locked(self, job: _Job) -> float:
        """Tokens that run before ``job`` finishes: for a whole request the queued whole ones and
        one slice; for a sliced one everything queued, except later deadlines when ordered by
        deadline (whole requests still run between its slices)."""
        whole = sum(j.remaining_tokens() for j in self._queue if not j.abandoned)
        running = 0.0
        if self._running is not None:
            running = sum(j.remaining_tokens() for j in self._running.jobs if not j.abandoned)
        if job.parts is None:
            # the call running now (a large request's current slice, not all it has left)
            call = 0.0
            if self._running is not None:
                call = sum(float(j.item().tokens) for j in self._running.jobs if not j.abandoned)
            return whole + call + (self.limits.slice_budget if self._large else 0)
        large = [j for j in self._large if not j.abandoned]
        if self.limits.order == "deadline":
            large = [j for j in large if j.deadline <= job.deadline]
        return whole + running + sum(j.remaining_tokens() for j in large)

    def _queued_locked(self) -> float:
        jobs = [*self._queue, *self._large]
        queued = sum(j.remaining_tokens() for j in jobs if not j.abandoned)
        if self._running is not None:
            queued += sum(j.remaining_tokens() for j in self._running.jobs if not j.abandoned)
        return queued

    def _rate_locked(self) -> float:
        """Tokens per second of recent pipeline calls (0 before any)."""
        tokens = sum(t for t, _ in self._recent)
        seconds = sum(s for _, s in self._recent)
        return tokens / seconds if tokens > 0 and seconds > 0 else 0.0

    def _seconds(self, tokens: float, rate: float) -> int:
        """Seconds to run ``tokens`` at ``rate``, clamped to [1, deadline]."""
        ceiling = max(1, math.ceil(self.limits.timeout_s))
        if rate <= 0:
            return 1
        return min(ceiling, max(1, math.ceil(tokens / rate)))

    def _gauges_locked(self) -> None:
        self._depth.set(self.depth)
        self._queued_tokens.set(sum(j.remaining_tokens() for j in (*self._queue, *self._large)))

    def retry_after_s(self) -> int:
        """Seconds until the work queued now has likely run: its tokens over recent throughput.

        Queued requests are tokenized already; throughput is tokens per second of pipeline calls
        over the last 32 calls. Clamped to [1, deadline].
        """
        with self._cond:
            return self._retry_after_locked()

    def _retry_after_locked(self) -> int:
        return self._seconds(self._queued_locked(), self._rate_locked())

    @property
    def depth(self) -> int:
        return len(self._queue) + len(self._large)

    @property
    def idle(self) -> bool:
        """Nothing queued, tokenizing or running: spare capacity (shadow copies wait for it)."""
        return not (self._queue or self._large or self._running or self._tokenizing)

    def abort(self, error: Exception) -> None:
        """Answer every queued and running request with ``error`` and stop the running call."""
        with self._cond:
            jobs = [*self._queue, *self._large]
            self._queue.clear()
            self._large.clear()
            self._gauges_locked()
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
        self._finisher.shutdown(wait=True)  # batches being decoded still get their answers
        self._tokenizer.shutdown(wait=False, cancel_futures=True)

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

    def _pop(self, wait_s: float | None, whole_only: bool = False) -> _Job | None:
        """The next job: a slice's turn or the oldest whole request (``whole_only``: only those);
        block up to ``wait_s`` (None: until one comes or closing)."""
        with self._cond:

            def ready() -> bool:
                return bool(self._queue or (self._large and not whole_only) or self._closed)

            if not ready():
                self._cond.wait_for(ready, wait_s)
            take_large = bool(self._large) and not whole_only
            if take_large and self._queue:
                take_large = self._large_turn
            if take_large:
                if self.limits.order == "deadline":
                    job = min(self._large, key=lambda j: j.deadline)
                    self._large.remove(job)
                else:
                    job = self._large.popleft()
                self._large_turn = False
            elif self._queue:
                job = self._queue.popleft()
                self._large_turn = True
            else:
                return None
            self._gauges_locked()
            return job

    def _push_front(self, job: _Job) -> None:
        with self._cond:
            self._queue.appendleft(job)  # already tokenized: first in the next batch
            self._gauges_locked()

    def _requeue(self, job: _Job) -> None:
        """Back among the large requests, for its next slice."""
        with self._cond:
            self._large.append(job)
            self._gauges_locked()
            self._cond.notify()

    def _next_batch(self) -> list[_Job] | None:
        """Jobs for one pipeline call, oldest first, within the budget; None once closed.

        A sliced request's slice runs in a call of its own (its results are partial)."""
        first = self._take(None)
        if first is None:
            return None if self._closed else []
        if first.parts is not None or first.alone:
            return [first]
        packing = Packing(self.limits.max_windows, self.limits.max_tokens)
        packing.add(first.prepared)
        batch = [first]
        queued_before = bool(self._queue)
        waited = False
        while True:
            job = self._take(0.0, whole_only=True)
            if job is None:
                if queued_before and not waited and self.limits.wait_s > 0:
                    waited = True
                    job = self._take(self.limits.wait_s, whole_only=True)
                if job is None:
                    return batch
            if job.alone or not packing.add(job.prepared):
                self._push_front(job)
                return batch
            batch.append(job)

    def _fits_one_slice(self, item: Prepared) -> bool:
        windows = item.num_windows
        limits = self.limits
        return windows <= limits.max_windows and windows * item.width <= limits.slice_budget

    def _take(self, wait_s: float | None, whole_only: bool = False) -> _Job | None:
        """The next live job; expired or failed ones are answered on the way."""
        while True:
            job = self._pop(wait_s, whole_only)
            if job is None:
                return None
            if job.abandoned:
                self._count_cancelled(job)
                continue
            if time.monotonic() > job.deadline:  # never spend compute on it
                self._count_cancelled(job)
                self._settle(job, DeadlineExceeded(f"request expired in {self.name}'s queue"))
                continue
            if job.prepared is None:  # not reached through submit; kept for direct queueing
                try:
                    job.set_prepared(job.prepare())
                except Exception as exc:
                    self._settle(job, exc)
                    continue
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
                STAGE_LATENCY.labels(self.name, self.version, "queue").observe(
                    started - job.enqueued
                )
        items = [job.item() for job in batch]
        if batch[0].parts is None:
            BATCH_SIZE.labels(self.name, self.version, "requests").observe(len(batch))
            BATCH_SIZE.labels(self.name, self.version, "texts").observe(
                sum(i.num_texts for i in items)
            )
        scope = CallScope()
        with self._cond:
            self._running = _Running(batch, scope)
        phased = self._phases is not None and batch[0].parts is None
        scores: Any = None
        try:
            with active(scope):
                if batch[0].parts is not None and self._run_slice is not None:
                    results = [self._run_slice(items[0])]
                elif phased:
                    assert self._phases is not None
                    scores = self._phases[0](items)
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
        if phased:
            onnx_s = time.monotonic() - started
            with self._cond:  # requests waiting: decode on the finisher, run theirs meanwhile
                overlap = bool(self._queue or self._large)
            if overlap:
                self._finisher.submit(self._finish, batch, items, scores, started, onnx_s)
            else:  # an idle model: no hand-off
                self._finish(batch, items, scores, started, onnx_s)
            return
        seconds = time.monotonic() - started
        with self._cond:
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

    def _finish(
        self, batch: list[_Job], items: list[Any], scores: Any, started: float, onnx_s: float
    ) -> None:
        """Decode a scored batch and answer its requests (on the finisher thread while others
        wait, else on the worker). A failure sends each request of a shared batch back to run
        alone, as a failed ``run`` does."""
        try:
            self._finish_batch(batch, items, scores, started, onnx_s)
        except Exception:  # the finisher must outlive any one batch
            log.exception("batcher %s: unexpected error while decoding", self.name)

    def _finish_batch(
        self, batch: list[_Job], items: list[Any], scores: Any, started: float, onnx_s: float
    ) -> None:
        assert self._phases is not None
        scored = time.monotonic()
        try:
            results = self._phases[1](items, scores)
        except Exception as exc:
            if len(batch) == 1:
                self._settle(batch[0], exc)
                return
            log.warning("batch of %d failed (%s); running them one by one", len(batch), exc)
            with self._cond:
                for job in reversed(batch):
                    job.alone = True
                    self._queue.appendleft(job)
                self._gauges_locked()
                self._cond.notify()
            return
        # the serial time of the batch (ONNX + decoding), as when both run on the worker
        seconds = onnx_s + (time.monotonic() - scored)
        with self._cond:
            self._recent.append((float(sum(i.tokens for i in items)), seconds))
        for job, result in zip(batch, results, strict=True):
            self._settle(job, result)
        tracing.record_batch(self.name, batch, results, started)  # no-op unless tracing on

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
