"""``POST /v1/redact``: entities found by the NER model, replaced by position (service.redaction).

The route only translates: options are checked before any inference (an unknown label, or mode
``hash`` without a configured key, is a 422 naming the field), the texts go through the data plane
like ``/v1/entities`` (windows over any length the NER route accepts), then the filtered entities
of every text are redacted with one placeholder numbering for the whole request.
"""

from __future__ import annotations

from fastapi import APIRouter, Request

from families.ner.runtime import NerPrediction
from service.api.common import registry_of
from service.api.entities import entity_filter
from service.api.schemas import ModelRef
from service.dataplane import infer
from service.errors import ERROR_RESPONSES, InvalidInput
from service.redaction import HashKeyMissing, Placeholders, Redactor
from service.redaction_results import RedactRequest, RedactResponse, redacted_result
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
        model,
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
        redacted_result(redactor, text, found, keep, numbering, model.name, *counts, model.version)
        for text, found, counts in zip(texts, prediction.entities, per_text, strict=True)
    ]
    mapping = numbering.mapping() if body.return_mapping and body.mode == "placeholder" else None
    return RedactResponse(
        model=ModelRef(name=model.name, version=model.manifest.version),
        mode=body.mode,
        results=results,
        mapping=mapping,
    )
