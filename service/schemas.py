"""Request and response parts every model route shares, outside the HTTP layer: the text(s) of a
request, the model it names, the model an answer came from. Each family's own request and
response bodies (``families/<name>/results.py``) are built on them."""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal

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


# The input policy for a text over one model window (service/text/truncation.py), on every route.
TruncationPolicy = Literal["window", "error", "truncate"]
TRUNCATION_DESCRIPTION = (
    "A text over one model window: read every window (window), refuse it with 422 (error), or "
    "read the first window only and flag it truncated (truncate)."
)


class TextsInput(BaseModel):
    # strict: what the schema says is what is accepted ("return_scores": 0 or "top_k": "3" is 422,
    # not silently coerced; found by schemathesis).
    model_config = ConfigDict(extra="forbid", strict=True)

    text: str | None = Field(default=None, description="One text; use either text or texts.")
    texts: list[str] | None = Field(default=None, description="Several texts, answered in order.")

    # The input fields of which a request gives exactly one (/v1/entities adds "words").
    _inputs: ClassVar[tuple[str, ...]] = ("text", "texts")

    @model_validator(mode="after")
    def _exactly_one(self) -> TextsInput:
        given = [name for name in self._inputs if getattr(self, name) is not None]
        if len(given) != 1:
            names = " or ".join(f"'{name}'" for name in self._inputs)
            raise ValueError(f"give exactly one of {names}")
        return self

    def all_texts(self) -> list[str]:
        return [self.text] if self.text is not None else list(self.texts or [])


class TextsRequest(TextsInput):
    model: str | None = Field(
        default=None,
        description="Bundle name; may be left out when one model of the task is loaded.",
    )


class ModelRef(BaseModel):
    name: str
    version: str
