"""``POST /v1/redact``: entities found by the NER model, replaced by position (service.redaction).

The route only translates: options are checked before any inference (an unknown label, or mode
``hash`` without a configured key, is a 422 naming the field), the texts go through the data plane
like ``/v1/entities`` (windows over any length the NER route accepts), then the filtered entities
of every text are redacted with one placeholder numbering for the whole request.
"""

from __future__ import annotations

from fastapi import APIRouter, Request

from families.ner.options import EntityFilter
from families.ner.runtime import Entity, NerPrediction
from service.api.common import registry_of
from service.api.entities import entity_filter
from service.api.redact_schemas import RedactedSpanOut, RedactedText, RedactRequest, RedactResponse
from service.api.schemas import ModelRef
from service.dataplane import infer
from service.errors import ERROR_RESPONSES, InvalidInput
from service.metrics import REDACTED_SPANS
from service.redaction import HashKeyMissing, Placeholders, Redactor, Span
from service.runtime.family import RequestOptions
from service.settings import Settings

router = APIRouter()


def redactor_for(body: RedactRequest, settings: Settings) -> Redactor:
    try:
        return Redactor(body.mode, settings.redact_key(), body.mask_char, body.hash_chars)
    except HashKeyMissing as exc:
        raise InvalidInput(str(exc), field="mode") from exc


@router.post(
    "/v1/redact",
    response_model=RedactResponse,
    responses=ERROR_RESPONSES,
    summary="Text with its named entities masked, numbered, hashed or removed",
)
async def redact(body: RedactRequest, request: Request) -> RedactResponse:
    registry = registry_of(request)
    redactor = redactor_for(body, registry.settings)
    model = registry.get("ner", body.model)
    keep = entity_filter(model, body.labels, body.min_score)
    texts = body.all_texts()
    model, prediction = await infer(
        registry,
        "ner",
        model.name,
        texts,
        body.text is not None,
        RequestOptions(truncation=body.truncation),
        NerPrediction,
    )
    numbering = Placeholders()
    per_text = zip(
        prediction.text_tokens, prediction.text_windows, prediction.truncated, strict=True
    )
    results = [
        redacted_result(redactor, text, found, keep, numbering, model.name, *counts)
        for text, found, counts in zip(texts, prediction.entities, per_text, strict=True)
    ]
    mapping = numbering.mapping() if body.return_mapping and body.mode == "placeholder" else None
    return RedactResponse(
        model=ModelRef(name=model.name, version=model.manifest.version),
        mode=body.mode,
        results=results,
        mapping=mapping,
    )


def redacted_result(
    redactor: Redactor,
    text: str,
    found: list[Entity],
    keep: EntityFilter,
    numbering: Placeholders,
    model: str,
    tokens: int,
    windows: int,
    truncated: bool,
) -> RedactedText:
    """One text's redaction result (the route's and the batch scorer's ``--redact``)."""
    spans = [Span(e.label, e.start, e.end, e.score) for e in found if keep.keep(e.label, e.score)]
    out = redactor.redact(text, spans, numbering)
    for s in out.spans:
        REDACTED_SPANS.labels(model, s.label).inc()
    return RedactedText(
        tokens=tokens,
        windows=windows,
        truncated=truncated,
        text=out.text,
        spans=[
            RedactedSpanOut(
                label=s.label,
                start=s.start,
                end=s.end,
                score=s.score,
                redacted_start=s.redacted_start,
                redacted_end=s.redacted_end,
            )
            for s in out.spans
        ],
    )
