"""The joint bundle's manifest: one encoder, N sequence heads, one token head, one packed output.

The graph has one output per head (``<head>_logits``) and one packed output the service reads
(``joint_logits``, ``[batch, tokens, token tags + every sequence head's classes]``): the token
head's scores in the first columns, then each sequence head's logits repeated over the tokens, so
one ONNX call answers every head and the shared batch loop, self-check and INT8 machinery work on
it unchanged. The manifest's ``labels`` are the token head's tags.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from families.classify.spec import ClassifySpec
from families.ner.spec import NerSpec
from service.manifest import ManifestBase, SchemaVersion

PACKED_OUTPUT = "joint_logits"
# What the token head adds to the logits of a label it must never emit (as in training: -inf
# turned into NaN there). The graph and the service both write exactly this value.
MASK_VALUE = -1e9
Pooling = Literal["cls", "mean", "pooler"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SequenceHead(_Strict):
    """One sequence head: its classes and how its logits become decisions (as ``/v1/classify``)."""

    name: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_-]*$")
    labels: list[str] = Field(min_length=1)
    pooling: Pooling = Field(
        description="cls: the first token's hidden state; mean: the mean over the attention "
        "mask; pooler: the encoder's own pooler (dense + tanh on the first token)"
    )
    classify: ClassifySpec
    output: str = Field(description="the graph's own output of this head")

    @model_validator(mode="after")
    def _sized(self) -> SequenceHead:
        thresholds = self.classify.thresholds
        if thresholds is not None and len(thresholds) != len(self.labels):
            raise ValueError(f"head {self.name}: need one threshold per label ({len(self.labels)})")
        if self.classify.head == "single-label" and len(self.labels) < 2:
            raise ValueError(f"head {self.name}: a single-label head needs at least two labels")
        if len(set(self.labels)) != len(self.labels):
            raise ValueError(f"head {self.name}: duplicate labels")
        return self


class TokenHead(_Strict):
    """The token head: decoded exactly like an NER bundle, after the fixed mask."""

    name: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_-]*$")
    ner: NerSpec
    masked_labels: list[str] = Field(
        default_factory=list,
        description=f"tags never emitted: their scores are set to {MASK_VALUE:g} before decoding",
    )
    output: str = Field(description="the graph's own output of this head")


class JointSpec(_Strict):
    token: TokenHead
    sequence: list[SequenceHead] = Field(min_length=1)
    intent_head: str = Field(description="the sequence head /v1/parse reports as the intent")

    @model_validator(mode="after")
    def _names(self) -> JointSpec:
        names = [self.token.name, *(h.name for h in self.sequence)]
        if len(set(names)) != len(names):
            raise ValueError(f"head names must be unique: {names}")
        if self.intent_head not in names[1:]:
            raise ValueError(f"intent_head {self.intent_head!r} is not a sequence head")
        return self

    def head(self, name: str) -> SequenceHead:
        return next(h for h in self.sequence if h.name == name)

    @property
    def head_names(self) -> list[str]:
        return [h.name for h in self.sequence]


class JointManifest(ManifestBase):
    """A joint bundle: ``/v1/parse`` from one forward pass; ``/v1/entities`` and ``/v1/classify``
    (``head``) too."""

    task: Literal["joint"] = "joint"
    joint: JointSpec

    @property
    def head(self) -> str:
        return "joint"

    def content_schema_version(self) -> SchemaVersion:
        return 4

    @property
    def columns(self) -> dict[str, tuple[int, int]]:
        """Columns of each head in the packed output: the token head first, then in order."""
        spans, at = {self.joint.token.name: (0, len(self.labels))}, len(self.labels)
        for h in self.joint.sequence:
            spans[h.name] = (at, at + len(h.labels))
            at += len(h.labels)
        return spans

    @model_validator(mode="after")
    def _consistent(self) -> JointManifest:
        unknown = sorted(set(self.joint.token.masked_labels) - set(self.labels))
        if unknown:
            raise ValueError(f"masked labels {unknown} are not token head tags")
        if "O" in self.joint.token.masked_labels:
            raise ValueError("the outside tag O cannot be masked")
        if self.onnx.output != PACKED_OUTPUT:
            raise ValueError(f"a joint bundle's service output is {PACKED_OUTPUT!r}")
        crf = self.joint.token.ner.crf
        k = len(self.labels)
        if crf is not None and (
            len(crf.start) != k or len(crf.end) != k or any(len(r) != k for r in crf.transitions)
        ):
            raise ValueError(f"CRF scores must be sized to the {k} token tags")
        return self
