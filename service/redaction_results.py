"""Request and response bodies of ``POST /v1/redact``, and one text's redaction result (the
route's and the batch scorer's ``--redact``): outside the HTTP layer, which the batch scorer does
not import."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from families.ner.options import EntityFilter
from families.ner.runtime import Entity
from service.metrics import REDACTED_SPANS
from service.redaction import Placeholders, Redactor, Span
from service.schemas import EXACTLY_ONE_OF_TEXT_OR_TEXTS, ModelRef, TextsRequest, TruncationPolicy


class RedactRequest(TextsRequest):
    model_config = ConfigDict(
        extra="forbid",
        strict=True,
        json_schema_extra={
            "examples": [{"text": "tushar se 2 misal mangwao", "mode": "placeholder"}],
            "oneOf": EXACTLY_ONE_OF_TEXT_OR_TEXTS,
        },
    )

    mode: Literal["mask", "placeholder", "hash", "remove"] = Field(
        default="placeholder",
        description="mask: every character becomes mask_char (length kept); placeholder: "
        "<LABEL_n>, one n per distinct value per label in the request; hash: keyed "
        "HMAC-SHA256, truncated (needs a configured key); remove: the span is deleted.",
    )
    labels: list[str] | None = Field(
        default=None, min_length=1, description="Redact only entities of these types."
    )
    min_score: float | dict[str, float] | None = Field(
        default=None,
        description="Redact only entities scoring at least this (one number, or per type).",
    )
    truncation: TruncationPolicy = Field(
        default="window",
        description="As on /v1/entities; with truncate the unread end is returned unredacted and "
        "the result says truncated: true.",
    )
    return_mapping: bool = Field(
        default=False, description="placeholder mode: also return placeholder -> original text."
    )
    mask_char: str = Field(default="*", min_length=1, max_length=1)
    hash_chars: int = Field(default=16, ge=8, le=64, description="Hex digits of the HMAC kept.")


class RedactedSpanOut(BaseModel):
    label: str
    start: int = Field(description="Offset of the span in the ORIGINAL text.")
    end: int = Field(description="End offset in the original text (exclusive).")
    score: float = Field(ge=0.0, le=1.0)
    redacted_start: int = Field(description="Offset of its replacement in the redacted text.")
    redacted_end: int = Field(description="End of its replacement in the redacted text.")


class RedactedText(BaseModel):
    text: str = Field(description="The redacted text.")
    spans: list[RedactedSpanOut] = Field(description="Replaced spans, in text order.")
    tokens: int = Field(description="Content tokens of the text (before any truncation).")
    windows: int = Field(description="Model windows read.")
    truncated: bool = Field(description="True when the end of the text was not read.")


class RedactResponse(BaseModel):
    model: ModelRef
    mode: str
    results: list[RedactedText] = Field(description="One entry per input text, in order.")
    mapping: dict[str, str] | None = Field(
        default=None, description="Placeholder -> original text (placeholder mode, on request)."
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
    version: str = "",
) -> RedactedText:
    """One text's redaction result (the route's and the batch scorer's ``--redact``);
    ``model`` and ``version``: whose spans the metric counts."""
    spans = [Span(e.label, e.start, e.end, e.score) for e in found if keep.keep(e.label, e.score)]
    out = redactor.redact(text, spans, numbering)
    for s in out.spans:
        REDACTED_SPANS.labels(model, version, s.label).inc()
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
