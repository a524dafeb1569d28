"""Request and response bodies of the public API."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, JsonValue, model_validator

# "Exactly one of text / texts (non-empty)" in the JSON schema too, so clients and fuzzers see
# the rule the validator below enforces; a null counts as absent, as it does there.
EXACTLY_ONE_OF_TEXT_OR_TEXTS: list[JsonValue] = [
    {"required": ["text"], "properties": {"text": {"type": "string"}, "texts": {"type": "null"}}},
    {
        "required": ["texts"],
        "properties": {"texts": {"type": "array", "minItems": 1}, "text": {"type": "null"}},
    },
]


def _integral(value: Any) -> Any:
    """1.0 is an integer by JSON Schema's definition (the OpenAPI document says "integer"):
    accept integral floats as that integer; 1.5, true and "1" stay refused (strict)."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


# top_k: an integer in [1, 1000] that accepts what JSON Schema calls an integer (1.0; found by
# schemathesis). The bounds go before the validator, so the schema says minimum/maximum.
TopK = Annotated[int, Field(ge=1, le=1000), BeforeValidator(_integral)]


class TextsInput(BaseModel):
    # strict: what the schema says is what is accepted ("return_scores": 0 or "top_k": "3" is 422,
    # not silently coerced; found by schemathesis).
    model_config = ConfigDict(extra="forbid", strict=True)

    text: str | None = Field(default=None, description="One text; use either text or texts.")
    texts: list[str] | None = Field(default=None, description="Several texts, answered in order.")

    @model_validator(mode="after")
    def _exactly_one(self) -> TextsInput:
        if (self.text is None) == (self.texts is None):
            raise ValueError("give exactly one of 'text' or 'texts'")
        return self

    def all_texts(self) -> list[str]:
        return [self.text] if self.text is not None else list(self.texts or [])


class TextsRequest(TextsInput):
    model: str | None = Field(
        default=None,
        description="Bundle name; may be left out when one model of the task is loaded.",
    )


class EntitiesRequest(TextsRequest):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"text": "tushar se 2 misal mangwao"}],
            "oneOf": EXACTLY_ONE_OF_TEXT_OR_TEXTS,
        },
    )


class PosturesRequest(TextsRequest):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"text": "Defendant moves to dismiss ...", "top_k": 3}],
            "oneOf": EXACTLY_ONE_OF_TEXT_OR_TEXTS,
        },
    )

    top_k: TopK | None = Field(
        default=None, description="Return at most this many predicted postures."
    )
    return_scores: bool = Field(default=False, description="Also return every class's probability.")


class ClassifyRequest(TextsRequest):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"text": "where is my order?", "return_scores": True}],
            "oneOf": EXACTLY_ONE_OF_TEXT_OR_TEXTS,
        },
    )

    top_k: TopK | None = Field(
        default=None, description="Return at most this many predicted classes."
    )
    return_scores: bool = Field(default=False, description="Also return every class's probability.")


class EntityOut(BaseModel):
    label: str = Field(description="Entity type, e.g. FOOD.")
    start: int = Field(description="Offset of the first character (Python str index).")
    end: int = Field(description="Offset after the last character: text[start:end] == text.")
    text: str
    score: float = Field(
        ge=0.0,
        le=1.0,
        description="CRF probability that exactly these words carry exactly these tags.",
    )


class TextEntities(BaseModel):
    entities: list[EntityOut]


class ModelRef(BaseModel):
    name: str
    version: str


class EntitiesResponse(BaseModel):
    model: ModelRef
    results: list[TextEntities] = Field(description="One entry per input text, in order.")


class PostureOut(BaseModel):
    label: str
    probability: float = Field(ge=0.0, le=1.0)
    threshold: float = Field(
        ge=0.0, le=1.0, description="The class's calibrated threshold; predicted when reached."
    )


class DocumentPostures(BaseModel):
    postures: list[PostureOut] = Field(description="Predicted postures, most probable first.")
    windows: int = Field(description="Model windows the document was split into.")
    scores: dict[str, float] | None = Field(
        default=None, description="Every class's probability (with return_scores)."
    )


class PosturesResponse(BaseModel):
    model: ModelRef
    results: list[DocumentPostures] = Field(description="One entry per input document, in order.")


class ClassOut(BaseModel):
    label: str
    probability: float = Field(ge=0.0, le=1.0)
    threshold: float = Field(
        ge=0.0,
        le=1.0,
        description="Multi-label: the class's threshold, predicted when reached. Single-label: the "
        "abstain threshold the top probability had to reach (0 when the bundle has none).",
    )


class TextClasses(BaseModel):
    labels: list[ClassOut] = Field(
        description="Predicted classes, most probable first. Multi-label: every class at or above "
        "its threshold. Single-label: the most probable class, or none (abstained)."
    )
    windows: int = Field(description="Model windows the text was split into.")
    scores: dict[str, float] | None = Field(
        default=None, description="Every class's probability (with return_scores)."
    )


class ClassifyResponse(BaseModel):
    model: ModelRef
    head: Literal["multi-label", "single-label"] = Field(
        description="multi-label: sigmoid per class + thresholds; single-label: softmax, argmax."
    )
    results: list[TextClasses] = Field(description="One entry per input text, in order.")


class ParseRequest(TextsInput):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"text": "order 2 masala dosa from saravana bhavan"}],
            "oneOf": EXACTLY_ONE_OF_TEXT_OR_TEXTS,
        },
    )

    top_k: TopK | None = Field(
        default=None, description="Rank at most this many intents (default: all)."
    )


class IntentOut(BaseModel):
    name: str
    confidence: float = Field(ge=0.0, le=1.0, description="The intent model's probability.")


class ParsedText(BaseModel):
    intent: IntentOut | None = Field(
        description="The most probable intent; null when its probability is below the intent "
        "model's calibrated abstain threshold (no intent)."
    )
    ranking: list[IntentOut] = Field(description="Intents, most probable first (top_k of them).")
    entities: list[EntityOut]


class ParseResponse(BaseModel):
    intent_model: ModelRef
    ner_model: ModelRef
    results: list[ParsedText] = Field(description="One entry per input text, in order.")


class ModelCard(BaseModel):
    name: str
    version: str
    task: str
    labels: list[str]
    max_length: int
    stride: int
    onnx_sha256: str
    opset: int
    provider: str | None
    details: dict[str, object] = Field(
        description="Task-specific settings (tag scheme, thresholds)."
    )
    parity: dict[str, object]
    export: dict[str, object]
    variant: dict[str, object] | None = Field(
        default=None,
        description="Graph variant (fusions, INT8 and its accuracy gate); null for plain fp32.",
    )
    selfcheck: dict[str, object] | None = Field(
        default=None,
        description="The start-up self-check on this host's CPU (stored sample re-run).",
    )


class ModelsResponse(BaseModel):
    cpu: dict[str, object] = Field(
        description="This host's CPU model and the ISA flags that decide INT8 numerics."
    )
    models: list[ModelCard]


class Status(BaseModel):
    status: str
    detail: str | None = None
