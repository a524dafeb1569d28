"""Request and response parts every model route shares, outside the HTTP layer: the text(s) of a
request, the model it names, the model an answer came from. Each family's own request and
response bodies (``families/<name>/results.py``) are built on them."""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    JsonValue,
    SerializerFunctionWrapHandler,
    model_serializer,
    model_validator,
)

from service.review import Review

# "Exactly one of text / texts (non-empty)" in the JSON schema too, so clients and fuzzers see
# the rule the validator below enforces; a null counts as absent, as it does there.
EXACTLY_ONE_OF_TEXT_OR_TEXTS: list[JsonValue] = [
    {"required": ["text"], "properties": {"text": {"type": "string"}, "texts": {"type": "null"}}},
    {
        "required": ["texts"],
        "properties": {"texts": {"type": "array", "minItems": 1}, "text": {"type": "null"}},
    },
]


# str.isspace(), exactly: what check_texts strips before calling a text blank and what a
# pre-split word may not hold. Written as \u escapes so that ECMA-262 (the regex dialect of JSON
# Schema's "pattern") and Python's re read the same set: their \s differ (\x1c-\x1f and \x85
# are whitespace to Python only, \ufeff to ECMA-262 only). tests/api/test_openapi_rules.py
# checks it against str.isspace over every code point.
WHITESPACE = (
    r"\u0009-\u000d\u001c-\u0020\u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
)
NOT_BLANK = f"[^{WHITESPACE}]"  # "pattern": somewhere a character that is not whitespace
WORD = f"^[^{WHITESPACE}]+$"  # "pattern": non-empty, no whitespace


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


class ReviewReasonOut(BaseModel):
    """Why a person must look at one label of a document (docs/review.md)."""

    label: str
    reason: Literal["class_not_automated", "near_threshold"] = Field(
        description="class_not_automated: a label of a class whose validated F1 is below the "
        "automation target was predicted; near_threshold: the class's probability lies in its "
        "review band around the threshold (predicted or not)."
    )
    probability: float = Field(ge=0.0, le=1.0)
    threshold: float = Field(ge=0.0, le=1.0, description="The class's decision threshold.")


REVIEW_DESCRIPTION = (
    "Present only when the bundle carries per-class automation: true when a person must look at "
    "this document (at least one reason)."
)
REASONS_DESCRIPTION = "Present with review: the labels that need a person, and why (class order)."


class ReviewedResult(BaseModel):
    """A per-text result that may carry ``review`` and ``reasons``: both are left out of the JSON
    when the bundle has no automation data, so such answers stay byte-identical to before."""

    @model_serializer(mode="wrap")
    def _without_absent_review(self, handler: SerializerFunctionWrapHandler):  # type: ignore[no-untyped-def]
        # No return annotation on purpose: pydantic then keeps the model's own JSON schema.
        out = handler(self)
        if isinstance(out, dict) and getattr(self, "review", None) is None:
            out.pop("review", None)
            out.pop("reasons", None)
        return out


def review_fields(decision: Review | None) -> dict[str, Any]:
    """The ``review`` and ``reasons`` fields of one text's result (none without automation)."""
    if decision is None:
        return {}
    return {
        "review": decision.review,
        "reasons": [ReviewReasonOut(**vars(r)) for r in decision.reasons],
    }


def reviews_per_text(reviews: list[Review] | None, texts: int) -> list[Review | None]:
    """One review decision (or None, without automation) per text, in order."""
    return list(reviews) if reviews is not None else [None] * texts
