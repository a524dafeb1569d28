"""Shadow traffic: after a request is answered, a copy of its input may run on the model's shadow
version; the two answers are compared (the family's ``agreement`` hook) and counted, never
returned. Copies wait in a bounded queue per model, consumed by one background task that runs
them on the shadow version's own worker; a full queue drops the copy (counted), so the served
request never waits for shadow work."""

from __future__ import annotations

import asyncio
import functools
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from service.metrics import SHADOW_COMPARISONS, SHADOW_DROPPED, SHADOW_ERRORS
from service.runtime.family import RequestOptions
from service.versions.group import VersionGroup
from service.versions.loaded import LoadedModel

log = logging.getLogger("service.shadow")

# run_model(model, texts, prepare, field, max_tokens): the data plane's worker call.
RunModel = Callable[[LoadedModel, list[str], Callable[[], Any], str, int], Awaitable[Any]]


@dataclass
class _Copy:
    target: LoadedModel
    texts: list[str]
    options: RequestOptions
    served: Any
    agreement: Callable[[Any, Any], bool] | None


class ShadowRunner:
    def __init__(self, capacity: int, max_tokens: int) -> None:
        self.capacity = capacity
        self.max_tokens = max_tokens
        self._queues: dict[str, tuple[asyncio.AbstractEventLoop, asyncio.Queue[_Copy]]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._rng = random.Random()

    def offer(
        self,
        group: VersionGroup,
        served: LoadedModel,
        texts: list[str],
        options: RequestOptions,
        result: Any,
        agreement: Callable[[Any, Any], bool] | None,
        run: RunModel,
    ) -> None:
        """Queue a copy for the shadow version with the policy's probability (never blocks)."""
        shadow = group.table.shadow
        if shadow is None or shadow.version == served.version:
            return
        if shadow.fraction < 1.0 and self._rng.random() >= shadow.fraction:
            return
        target = group.versions.get(shadow.version)
        if target is None or target.state != "ready":
            return
        queue = self._queue(group.name, run)
        try:
            queue.put_nowait(_Copy(target, texts, options, result, agreement))
        except asyncio.QueueFull:
            SHADOW_DROPPED.labels(target.name, target.version).inc()

    def _queue(self, name: str, run: RunModel) -> asyncio.Queue[_Copy]:
        loop = asyncio.get_running_loop()
        held = self._queues.get(name)
        if held is not None and held[0] is loop:
            return held[1]
        queue: asyncio.Queue[_Copy] = asyncio.Queue(self.capacity)
        self._queues[name] = (loop, queue)
        task = loop.create_task(self._consume(queue, run), name=f"shadow-{name}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return queue

    async def _consume(self, queue: asyncio.Queue[_Copy], run: RunModel) -> None:
        while True:
            copy = await queue.get()
            target = copy.target
            runtime = target.runtime
            try:
                if runtime is None or target.state != "ready":
                    raise RuntimeError(f"{target.ref} is {target.state}")
                prepare = functools.partial(runtime.prepare, copy.texts, copy.options)
                answer = await run(target, copy.texts, prepare, "texts", self.max_tokens)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                SHADOW_ERRORS.labels(target.name, target.version).inc()
                log.warning("shadow copy on %s failed: %s", target.ref, exc)
                continue
            if copy.agreement is not None:
                agree = copy.agreement(copy.served, answer)
                outcome = "agree" if agree else "disagree"
                SHADOW_COMPARISONS.labels(target.name, target.version, outcome).inc()

    async def stop(self) -> None:
        """Cancel the consumers (at shutdown; queued copies are dropped)."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._queues.clear()
