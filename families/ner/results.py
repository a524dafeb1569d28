"""The NER family's API bodies: ``/v1/entities``'s request and response, and the result per text
(also in ``/v1/parse``), built from the runtime's :class:`~families.ner.runtime.NerPrediction`. The
batch scorer writes the same result objects."""

from __future__ import annotations

from typing import Annotated, ClassVar

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    JsonValue,
    SerializerFunctionWrapHandler,
    model_serializer,
)

from families.ner.options import EntityFilter
from families.ner.runtime import Entity, NerPrediction
from service.schemas import (
    TRUNCATION_DESCRIPTION,
    WORD,
    ModelRef,
    TextsRequest,
    TruncationPolicy,
    _integral,
)

# /v1/entities also takes pre-split words: exactly one of text / texts / words.
# The given one is not null (and a list not empty), as in EXACTLY_ONE_OF_TEXT_OR_TEXTS (found by
# schemathesis: "texts": [] and "text": null alone were schema-valid, then 422).
_GIVEN: dict[str, JsonValue] = {
    "text": {"type": "string"},
    "texts": {"type": "array", "minItems": 1},
    "words": {"type": "array", "minItems": 1},
}
EXACTLY_ONE_OF_TEXT_TEXTS_OR_WORDS: list[JsonValue] = [
    {
        "required": [name],
        "properties": {
            other: {"type": "null"} if other != name else _GIVEN[name]
            for other in ("text", "texts", "words")
        },
    }
    for name in ("text", "texts", "words")
]

# return_alternatives: an integer in [0, 20]; 1.0 counts as 1, as for top_k.
Alternatives = Annotated[int, Field(ge=0, le=20), BeforeValidator(_integral)]


class AlternativeOut(BaseModel):
    label: str
    probability: float = Field(
        ge=0.0, le=1.0, description="P(the entity's words carry exactly this type's entity tags)."
    )


class EntityOut(BaseModel):
    label: str = Field(description="Entity type, e.g. FOOD.")
    start: int = Field(description="Offset of the first character (Python str index).")
    end: int = Field(description="Offset after the last character: text[start:end] == text.")
    text: str
    score: float = Field(
        ge=0.0,
        le=1.0,
        description="How sure the model is of this entity; its meaning depends on the bundle's "
        "head (/v1/models details.head): a tagger (crf, softmax) gives the probability that "
        "exactly these words carry exactly these tags, a span head the geometric mean of the "
        "span's start, end and mean inside probabilities.",
    )
    alternatives: list[AlternativeOut] | None = Field(
        default=None,
        description="With return_alternatives: k: the next-best types of the same words, most "
        "probable first (label marginals from forward-backward).",
    )
    word_start: int | None = Field(
        default=None, description="With words input: index of the entity's first word."
    )
    word_end: int | None = Field(
        default=None, description="With words input: index after its last word."
    )

    @model_serializer(mode="wrap")
    def _omit_absent(self, handler: SerializerFunctionWrapHandler) -> dict[str, object]:
        """Optional details appear only when asked for: the default answer is unchanged."""
        data: dict[str, object] = handler(self)
        return {k: v for k, v in data.items() if v is not None or k not in _OPTIONAL_DETAILS}


_OPTIONAL_DETAILS = frozenset({"alternatives", "word_start", "word_end"})


class TextEntities(BaseModel):
    entities: list[EntityOut]
    tokens: int = Field(description="Content tokens of the text (before any truncation).")
    windows: int = Field(description="Model windows read.")
    truncated: bool = Field(
        description="True when the text was not read to its end (truncation: truncate)."
    )


# A pre-split word: non-empty, no whitespace. join_words (families.ner.options) refuses any
# other with its own message; the pattern only says so in the schema.
Word = Annotated[str, Field(json_schema_extra={"pattern": WORD})]


class EntitiesRequest(TextsRequest):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"text": "tushar se 2 misal mangwao"}],
            "oneOf": EXACTLY_ONE_OF_TEXT_TEXTS_OR_WORDS,
        },
    )
    _inputs: ClassVar[tuple[str, ...]] = ("text", "texts", "words")

    words: list[list[Word]] | None = Field(
        default=None,
        min_length=1,
        description="Texts already split into words (instead of text/texts): each is joined with "
        "one space between words; entities then also carry word_start/word_end.",
    )

    labels: list[str] | None = Field(
        default=None, min_length=1, description="Return only entities of these types."
    )
    min_score: float | dict[str, float] | None = Field(
        default=None,
        description="Return only entities scoring at least this (one number, or per type; types "
        "left out of the map are not filtered).",
    )
    truncation: TruncationPolicy = Field(default="window", description=TRUNCATION_DESCRIPTION)
    return_alternatives: Alternatives = Field(
        default=0,
        description="Per entity, this many next-best types with their probabilities (0: none).",
    )


class EntitiesResponse(BaseModel):
    model: ModelRef
    results: list[TextEntities] = Field(description="One entry per input text, in order.")


def entity_results(
    prediction: NerPrediction, keep: EntityFilter | None = None
) -> list[TextEntities]:
    """One ``TextEntities`` per text of the prediction, in order (``keep``: request filters)."""
    return [
        TextEntities(
            entities=[entity_out(e) for e in found if keep is None or keep.keep(e.label, e.score)],
            tokens=tokens,
            windows=windows,
            truncated=truncated,
        )
        for found, tokens, windows, truncated in zip(
            prediction.entities,
            prediction.text_tokens,
            prediction.text_windows,
            prediction.truncated,
            strict=True,
        )
    ]


def entity_out(e: Entity) -> EntityOut:
    alternatives = [AlternativeOut(label=n, probability=p) for n, p in e.alternatives]
    return EntityOut(
        label=e.label,
        start=e.start,
        end=e.end,
        text=e.text,
        score=e.score,
        alternatives=alternatives or None,
    )
