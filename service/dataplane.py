"""The data plane every model request goes through, HTTP or batch: model lookup, input limits, the
model's batcher, metrics. HTTP routes (``service.api``) only translate bodies to and from it; the
batch scorer (``service.batch``) uses its limits without the HTTP layer."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, TypeVar

from service.errors import InvalidInput, LimitExceeded, NotReady, ServiceError
from service.metrics import (
    FAILURES,
    INFERENCE_LATENCY,
    MODEL_REQUESTS,
    REVIEW_DOCUMENTS,
    REVIEW_REASONS,
    STAGE_LATENCY,
    TEXTS,
    TOKENS,
    TRUNCATED,
    WINDOWS,
)
from service.observability.request_context import annotate
from service.registry import LoadedModel, ModelRegistry
from service.review import Review
from service.runtime.family import RequestOptions, Result

W = TypeVar("W", bound=Result)


class Costed(Protocol):
    @property
    def tokens(self) -> int: ...


P = TypeVar("P", bound=Costed)


def check_texts(
    texts: list[str], single: bool, max_texts: int, max_chars: int, allow_blank: bool
) -> None:
    """Enforce limits and text sanity before any tokenization happens."""
    if not single and not texts:
        raise InvalidInput("texts must hold at least one text", field="texts")
    if len(texts) > max_texts:
        raise LimitExceeded(
            f"{len(texts)} texts in one request; the limit is {max_texts}",
            field="texts",
            limit=max_texts,
        )
    for i, text in enumerate(texts):
        where = "text" if single else f"texts[{i}]"
        if len(text) > max_chars:
            raise LimitExceeded(
                f"{where} has {len(text)} characters; the limit is {max_chars}",
                field=where,
                limit=max_chars,
            )
        if not allow_blank and not text.strip():
            raise InvalidInput(f"{where} is empty; there is nothing to classify", field=where)
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise InvalidInput(f"{where} is not valid Unicode ({exc.reason})", field=where) from exc


def within_budget(prepare: Callable[[], P], field: str, max_tokens: int) -> Callable[[], P]:
    """``prepare``, refusing (422) a request whose tokens exceed the per-request budget.

    Counted after tokenization, before any inference: what a request costs is its tokens, not
    its characters (one CJK character is a token, ten Latin ones may be two).
    """

    def prepare_checked() -> P:
        prepared = prepare()
        if prepared.tokens > max_tokens:
            raise LimitExceeded(
                f"{field} holds {prepared.tokens} tokens after tokenization; the limit is "
                f"{max_tokens} tokens per request",
                field=field,
                limit=max_tokens,
            )
        return prepared

    return prepare_checked


async def infer(
    registry: ModelRegistry,
    route: str,
    name: str | LoadedModel | None,
    texts: list[str],
    single: bool,
    options: RequestOptions,
    result_type: type[W],
) -> tuple[LoadedModel, W]:
    """Run one request on the model ``name`` (or the only one) that ``route`` serves (a key of
    ``ModelRegistry.route_tasks``): limits first (counted as failures of that model), then the
    batcher; ``result_type`` is what the runtime answers. ``name`` may pin a version
    (``name@version``); a route that looked the model up already passes the version it got
    (``ModelRegistry.get``), so the request stays on the version it picked at admission."""
    model = name if isinstance(name, LoadedModel) else registry.get(route, name)
    try:
        result = await _infer(registry, model, texts, single, options, result_type)
    except ServiceError as exc:
        MODEL_REQUESTS.labels(model.name, model.version, outcome(exc.status)).inc()
        raise
    except Exception:
        MODEL_REQUESTS.labels(model.name, model.version, "error").inc()
        raise
    MODEL_REQUESTS.labels(model.name, model.version, "ok").inc()
    group = registry.groups.get(model.name)
    if group is not None and group.table.shadow is not None:
        family = registry.by_task.get(model.manifest.task)
        agreement = family.agreement if family is not None else None
        registry.shadow.offer(group, model, texts, options, result, agreement, run_model)
    return model, result


def outcome(status: int) -> str:
    """A request's outcome for its version: error for a 5xx (the version failed), else ok."""
    return "error" if status >= 500 else "ok"


async def _infer(
    registry: ModelRegistry,
    model: LoadedModel,
    texts: list[str],
    single: bool,
    options: RequestOptions,
    result_type: type[W],
) -> W:
    runtime = model.runtime
    if runtime is None:
        raise NotReady(f"model {model.ref} is not loaded")
    settings = registry.settings
    try:
        check_texts(texts, single, settings.max_texts, runtime.max_chars, runtime.allow_blank)
    except ServiceError as exc:
        count_rejection(model, exc)
        raise
    field = "text" if single else "texts"
    result = await run_model(
        model, texts, lambda: runtime.prepare(texts, options), field, settings.max_request_tokens
    )
    if not isinstance(result, result_type):
        raise TypeError(f"{model.name} answered {type(result).__name__}, not {result_type}")
    return result


async def run_model(
    model: LoadedModel,
    texts: list[str],
    prepare: Callable[[], Any],
    field: str,
    max_tokens: int,
) -> Result:
    """Queue one request on the model's batcher (merged with concurrent ones) and record it.

    ``prepare`` tokenizes the request before it is queued, never on the model's worker (the
    batcher: at once when small, else on the model's tokenizer thread). A request over
    ``max_tokens`` is refused there (422 on ``field``) and costs the model's batch loop nothing.
    """
    annotate(model=model.name, version=model.version, texts=len(texts))
    batcher = model.batcher
    if batcher is None:
        raise NotReady(f"model {model.ref} is not loaded")
    checked = within_budget(prepare, field, max_tokens)
    name, version = model.name, model.version
    model.inflight += 1  # an unload waits for this to return to 0 (ModelRegistry._drain)
    try:
        result: Result = await batcher.submit(checked, chars=sum(len(t) for t in texts))
    except ServiceError as exc:
        FAILURES.labels(name, version, exc.type).inc()
        raise
    except Exception as exc:
        FAILURES.labels(name, version, type(exc).__name__).inc()
        raise
    finally:
        model.inflight -= 1
    for stage, seconds in result.timings.items():
        STAGE_LATENCY.labels(name, version, stage).observe(seconds)
    INFERENCE_LATENCY.labels(name, version).observe(sum(result.timings.values()))
    TEXTS.labels(name, version).inc(len(texts))
    TOKENS.labels(name, version).inc(result.tokens)
    WINDOWS.labels(name, version).inc(result.total_windows)
    TRUNCATED.labels(name, version).inc(sum(getattr(result, "truncated", ())))
    annotate(tokens=result.tokens, windows=result.total_windows)
    observe_reviews(name, getattr(result, "reviews", None), version)
    return result


def observe_reviews(model: str, reviews: list[Review] | None, version: str = "") -> None:
    """Count the review decisions of a result that carries them (bundles with automation)."""
    if not reviews:
        return
    flagged = sum(r.review for r in reviews)
    if flagged:
        REVIEW_DOCUMENTS.labels(model, version, "review").inc(flagged)
    if flagged < len(reviews):
        REVIEW_DOCUMENTS.labels(model, version, "automatic").inc(len(reviews) - flagged)
    for decision in reviews:
        for reason in decision.reasons:
            REVIEW_REASONS.labels(model, version, reason.label, reason.reason).inc()


def count_rejection(model: LoadedModel, error: ServiceError) -> None:
    annotate(model=model.name)
    FAILURES.labels(model.name, model.version, error.type).inc()
