"""Request and response bodies of the public API."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

# The families' request, response and result bodies (families/<name>/results.py) and the shared
# parts (service/schemas.py), re-exported: the routes and clients import them from here.
from families.classify.results import ClassifyRequest as ClassifyRequest
from families.classify.results import ClassifyResponse as ClassifyResponse
from families.classify.results import ClassOut as ClassOut
from families.classify.results import TextClasses as TextClasses
from families.ner.results import (
    EXACTLY_ONE_OF_TEXT_TEXTS_OR_WORDS as EXACTLY_ONE_OF_TEXT_TEXTS_OR_WORDS,
)
from families.ner.results import AlternativeOut as AlternativeOut
from families.ner.results import EntitiesRequest as EntitiesRequest
from families.ner.results import EntitiesResponse as EntitiesResponse
from families.ner.results import EntityOut as EntityOut
from families.ner.results import TextEntities as TextEntities
from families.postures.results import DocumentPostures as DocumentPostures
from families.postures.results import PostureOut as PostureOut
from families.postures.results import PosturesRequest as PosturesRequest
from families.postures.results import PosturesResponse as PosturesResponse
from service.api.versions import VersionState
from service.review import AutomationSummary
from service.schemas import EXACTLY_ONE_OF_TEXT_OR_TEXTS as EXACTLY_ONE_OF_TEXT_OR_TEXTS
from service.schemas import ModelRef as ModelRef
from service.schemas import TextsInput as TextsInput
from service.schemas import TextsRequest as TextsRequest
from service.schemas import TopK
from service.versions.routing import Role
from service.versions.state import State


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
    labels: list[str] | None = Field(
        default=None, min_length=1, description="Return only entities of these types."
    )
    min_score: float | dict[str, float] | None = Field(
        default=None,
        description="Return only entities scoring at least this (one number, or per type).",
    )
    model: str | None = Field(
        default=None,
        description="A bundle that answers /v1/parse alone (e.g. a joint bundle: intent, entities "
        "and its other heads from one encoder pass); absent: INFER_PARSE_INTENT_MODEL / "
        "INFER_PARSE_NER_MODEL, or the only intent + NER pair (the only such bundle when no "
        "intent classifier is loaded).",
    )


class IntentOut(BaseModel):
    name: str
    confidence: float = Field(ge=0.0, le=1.0, description="The intent model's probability.")


class HeadOut(BaseModel):
    labels: list[ClassOut] = Field(
        description="The head's decided classes (single-label: the top class, or none when "
        "abstained; multi-label: every class at or above its threshold)."
    )
    ranking: list[IntentOut] = Field(description="Classes, most probable first (top_k of them).")


class ParsedText(BaseModel):
    intent: IntentOut | None = Field(
        description="The most probable intent; null when its probability is below the intent "
        "model's calibrated abstain threshold (no intent)."
    )
    ranking: list[IntentOut] = Field(description="Intents, most probable first (top_k of them).")
    entities: list[EntityOut]
    heads: dict[str, HeadOut] | None = Field(
        default=None,
        description="Bundles answering /v1/parse alone: every sequence head other than the "
        "intent head, by name (null for the intent + NER pair).",
    )


class ParseResponse(BaseModel):
    intent_model: ModelRef
    ner_model: ModelRef
    results: list[ParsedText] = Field(description="One entry per input text, in order.")


class ModelCard(BaseModel):
    name: str
    version: str
    task: str
    labels: list[str]
    max_length: int | None = Field(
        description="Tokens per window; null for a bundle without a graph of its own."
    )
    stride: int | None = Field(description="Tokens shared by windows; null without windows.")
    onnx_sha256: str | None = Field(description="The ONNX graph's sha256; null without a graph.")
    opset: int | None = Field(description="The graph's ONNX opset; null without a graph.")
    model_sha256: str = Field(
        description="The sha256 identifying the model (the ONNX graph's, a TF-IDF bundle's "
        "weights file, an ensemble's members and weights)."
    )
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
    automation: AutomationSummary | None = Field(
        default=None,
        description="Per class: validated precision, recall and F1 with out-of-fold 95% "
        "intervals, automate, and the review band; null when the bundle has none (answers then "
        "carry no review fields). See docs/review.md.",
    )
    state: State = Field(default="ready", description="The version's state (see versions).")
    reason: str | None = Field(default=None, description="Why it failed (state failed).")
    role: Role | None = Field(
        default=None, description="stable, canary, shadow or idle (docs/operating/versions.md)."
    )
    traffic_share: float = Field(
        default=0.0, ge=0.0, le=1.0, description="Share of the model's requests it receives."
    )
    memory_mb: float = Field(default=0.0, description="Resident memory added by its load (MB).")


class ModelsResponse(BaseModel):
    cpu: dict[str, object] = Field(
        description="This host's CPU model and the ISA flags that decide INT8 numerics."
    )
    models: list[ModelCard] = Field(description="One card per loaded version.")
    versions: list[VersionState] = Field(
        default_factory=list,
        description="Every version (failed ones too) with its state, role and traffic share.",
    )


class Status(BaseModel):
    status: str
    detail: str | None = None
