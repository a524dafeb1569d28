"""The NER family's manifest section (``"task": "ner"``): tag scheme, head, CRF scores."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from service.manifest import ManifestBase, SchemaVersion, Strict


class CrfScores(Strict):
    start: list[float]
    end: list[float]
    transitions: list[list[float]]


class NerSpec(Strict):
    tag_scheme: Literal["BIO", "BIOES", "BILOU"] = "BIO"
    constrain_transitions: bool = Field(
        default=True,
        description="forbid the scheme's invalid moves (O→I-X, B-X→I-Y, start→I-X; with BIOES "
        "also E/S/O→I/E, B/I-X→anything but I-X/E-X, B/I at the end) when decoding",
    )
    head: Literal["crf", "softmax"] = Field(
        default="crf",
        description="crf: the graph outputs emissions, decoded with the CRF scores below; "
        "softmax: the graph outputs log-probabilities, decoded with zero transitions",
    )
    crf: CrfScores | None = None
    subtokens: Literal["first", "all"] = Field(
        default="first",
        description="how training placed labels (first sub-token, or every sub-token); the word's "
        "tag is read at its first sub-token either way",
    )
    crf_positions: Literal["words", "cls+words"] = Field(
        default="words",
        description="positions the CRF ran over in training: the words, or [CLS] (tag fixed to O) "
        "followed by the words",
    )

    @model_validator(mode="after")
    def _head_has_its_scores(self) -> NerSpec:
        if (self.head == "crf") != (self.crf is not None):
            raise ValueError("a crf head needs crf scores, a softmax head has none")
        if self.crf_positions != "words" and self.head != "crf":
            raise ValueError("crf_positions applies to crf heads only")
        return self

    @property
    def needs_v3(self) -> bool:
        """Whether anything here goes beyond what schema 1/2 services understand."""
        return any(getattr(self, k) != v for k, v in _V1_NER_DEFAULTS.items())


_V1_NER_DEFAULTS = {
    "tag_scheme": "BIO",
    "head": "crf",
    "subtokens": "first",
    "crf_positions": "words",
}


class NerManifest(ManifestBase):
    task: Literal["ner"] = "ner"
    ner: NerSpec

    @property
    def head(self) -> str:
        return self.ner.head

    def dump_exclude(self) -> dict[str, Any]:
        # the NER defaults of the first round are left out where nothing beyond them is used
        return {} if self.ner.needs_v3 else {"ner": set(_V1_NER_DEFAULTS) - {"tag_scheme"}}

    def content_schema_version(self) -> SchemaVersion:
        # an NER head, tag scheme or layout beyond BIO BERT-CRF needs schema 3
        return 3 if self.ner.needs_v3 else 1

    @model_validator(mode="after")
    def _crf_matches_labels(self) -> NerManifest:
        k = len(self.labels)
        crf = self.ner.crf
        if crf is None:
            return self
        if len(crf.start) != k or len(crf.end) != k or any(len(r) != k for r in crf.transitions):
            raise ValueError(f"CRF scores must be sized to the {k} labels")
        if len(crf.transitions) != k:
            raise ValueError(f"CRF transitions must be {k}x{k}")
        return self
