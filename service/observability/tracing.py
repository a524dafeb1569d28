"""Optional OpenTelemetry traces: a span per request and, under it, queue wait, tokenize,
inference and decode spans of that request's batch.

Off unless the standard variables ask for it: ``OTEL_TRACES_EXPORTER`` (``otlp`` or ``console``)
or an ``OTEL_EXPORTER_OTLP_[TRACES_]ENDPOINT``; ``OTEL_SDK_DISABLED=true`` wins. The SDK itself
reads the rest (``OTEL_SERVICE_NAME``, ``OTEL_RESOURCE_ATTRIBUTES``, ``OTEL_TRACES_SAMPLER``,
``OTEL_BSP_*``, ``OTEL_EXPORTER_OTLP_*``, ``OTEL_PROPAGATORS``). The OTLP exporter lives in the
``otlp`` extra so the default image stays small. When tracing is off every function here returns
at once. Stage spans are recorded after the fact, with the times the batcher and the pipeline
measured, because the batch runs in the model's worker thread, outside the request's context.
"""

from __future__ import annotations

import atexit
import os
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, Protocol

from opentelemetry import context as otel_context
from opentelemetry import propagate, trace

SERVICE_NAME = "nlp-inference"
_tracer: trace.Tracer | None = None
_provider: Any = None


class TracingUnavailable(RuntimeError):
    """The requested exporter is not installed (``pip install 'nlp-inference[otlp]'``)."""


def requested(env: Mapping[str, str]) -> str | None:
    """The exporter the ``OTEL_*`` variables ask for, or None when tracing stays off."""
    if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return None
    exporter = env.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    if exporter:
        return None if exporter == "none" else exporter
    if env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or env.get("OTEL_EXPORTER_OTLP_ENDPOINT"):
        return "otlp"
    return None


def _exporter(name: str) -> Any:
    if name == "console":
        from opentelemetry.sdk.trace.export import ConsoleSpanExporter

        return ConsoleSpanExporter()
    if name == "otlp":
        try:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        except ImportError as exc:
            raise TracingUnavailable(
                "OTEL_TRACES_EXPORTER=otlp needs the OTLP exporter: "
                "pip install 'nlp-inference[otlp]'"
            ) from exc
        return OTLPSpanExporter()
    raise TracingUnavailable(f"OTEL_TRACES_EXPORTER={name!r}: supported are otlp, console, none")


def configure(env: Mapping[str, str] | None = None, exporter: Any = None) -> bool:
    """Turn tracing on when the environment asks, or send spans to ``exporter``.

    ``exporter``: any OpenTelemetry span exporter the caller injects (an in-memory one, a custom
    backend); it gets each span as it ends, synchronously. Exporters named by the environment
    are batched in the background and flushed at exit. Returns whether tracing is on.
    """
    global _tracer, _provider
    env = os.environ if env is None else env
    name = None if exporter is not None else requested(env)
    if exporter is None and name is None:
        disable()
        return False
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor

    resource = Resource.create({"service.name": env.get("OTEL_SERVICE_NAME") or SERVICE_NAME})
    provider = TracerProvider(resource=resource)
    if exporter is not None:
        provider.add_span_processor(SimpleSpanProcessor(exporter))
    else:
        provider.add_span_processor(BatchSpanProcessor(_exporter(name or "")))
        atexit.register(provider.shutdown)
    _provider, _tracer = provider, provider.get_tracer("service")
    return True


def disable() -> None:
    global _tracer, _provider
    if _provider is not None:
        _provider.shutdown()
    _tracer, _provider = None, None


def enabled() -> bool:
    return _tracer is not None


@contextmanager
def server_span(method: str, headers: Mapping[str, str]) -> Iterator[trace.Span | None]:
    """The request's span, child of the caller's ``traceparent`` when there is one; current
    for the rest of the request (the batcher captures it at submit)."""
    if _tracer is None:
        yield None
        return
    parent = propagate.extract(headers)
    with _tracer.start_as_current_span(
        method, context=parent, kind=trace.SpanKind.SERVER, record_exception=False
    ) as span:
        yield span


def trace_id(span: trace.Span | None) -> str | None:
    """The span's trace id as 32 hex digits (None without a valid span)."""
    if span is None or not span.get_span_context().is_valid:
        return None
    return format(span.get_span_context().trace_id, "032x")


def capture() -> otel_context.Context | None:
    """The current context (the request's span), to parent stage spans recorded in a thread."""
    return otel_context.get_current() if _tracer is not None else None


class TracedJob(Protocol):
    """What the batcher keeps per request: its captured context and when it moved along."""

    trace: otel_context.Context | None
    enqueued: float  # time.monotonic()
    prepared_at: float  # time.monotonic(), when tokenization ended

    @property
    def prepared(self) -> Any: ...


def _ns(monotonic_s: float, offset_ns: int) -> int:
    return int(monotonic_s * 1e9) + offset_ns


def record_batch(
    model: str, jobs: Sequence[TracedJob], results: Sequence[Any], started: float
) -> None:
    """Per request of one batch: queue wait, tokenize, then the batch's own stages in order
    (inference with the batch's size and tokens, decode), as children of the request's span."""
    if _tracer is None:
        return
    offset = time.time_ns() - time.monotonic_ns()  # monotonic -> epoch, for span timestamps
    batch: dict[str, int | str] = {
        "infer.model": model,
        "infer.batch.requests": len(jobs),
        "infer.batch.texts": sum(int(j.prepared.num_texts) for j in jobs),
        "infer.batch.windows": sum(int(j.prepared.num_windows) for j in jobs),
        "infer.batch.tokens": sum(int(getattr(r, "tokens", 0)) for r in results),
    }
    for job, result in zip(jobs, results, strict=True):
        if job.trace is None:
            continue
        timings: dict[str, float] = dict(getattr(result, "timings", {}))
        tokenized = timings.pop("tokenize", 0.0)
        spans: list[tuple[str, float, float, dict[str, int | str]]] = [
            ("queue", job.enqueued, job.prepared_at - tokenized, {}),
            ("tokenize", job.prepared_at - tokenized, job.prepared_at, {}),
        ]
        at = started
        for stage, seconds in timings.items():  # inference, decode: one after the other
            attributes = dict(batch) if stage == "inference" else {}
            if stage == "inference":
                attributes["infer.request.windows"] = int(getattr(result, "total_windows", 0))
                attributes["infer.request.tokens"] = int(getattr(result, "tokens", 0))
            spans.append((stage, at, at + seconds, attributes))
            at += seconds
        for name, begin, end, attributes in spans:
            span = _tracer.start_span(
                name,
                context=job.trace,
                start_time=_ns(begin, offset),
                attributes={"infer.model": model, **attributes},
            )
            span.end(end_time=_ns(max(begin, end), offset))
