"""A model family defined outside the package tree: "word-count", a two-class multi-label
classifier whose ONNX graph counts a text's words (``long`` from three words on, else ``short``).

It is everything a family's serving half consists of (a manifest class with its own section, a
runtime, a registration object reusing the classify family's result objects) in one test module,
registered only by injection (``ModelRegistry(settings, families=...)``), never in
``service/families.py``. docs/adding-a-family.md walks through it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import onnx
from onnx import TensorProto, helper
from pydantic import Field

from families.classify.results import classify_results
from families.classify.runtime import ClassPrediction, ClassScore
from families.classify.serving import ClassRecords
from service.bundle import write_manifest
from service.manifest import (
    ExportInfo,
    ManifestBase,
    OnnxInfo,
    ParityReport,
    SchemaVersion,
    Strict,
    TokenizerInfo,
)
from service.runtime.family import RequestOptions, ServingFamily
from service.runtime.session import InferenceSession
from service.settings import Settings

LABELS = ["long", "short"]


class WordCountSpec(Strict):
    min_words: float = Field(description="words from which a text is long")


class WordCountManifest(ManifestBase):
    task: Literal["word-count"] = "word-count"
    word_count: WordCountSpec

    @property
    def head(self) -> str:
        return "multi-label"

    def content_schema_version(self) -> SchemaVersion:
        return 4


@dataclass
class WordCountInputs:
    """A tokenized request: one window per text, one id per word."""

    texts: list[str]
    top_k: int | None
    rows: list[list[int]]

    @property
    def num_texts(self) -> int:
        return len(self.texts)

    @property
    def num_windows(self) -> int:
        return len(self.rows)

    @property
    def width(self) -> int:
        return max((len(r) for r in self.rows), default=0)

    @property
    def tokens(self) -> int:
        return sum(len(r) for r in self.rows)

    def split(self, max_windows: int, max_tokens: int) -> list[WordCountInputs]:
        return [self]


class WordCountRuntime:
    """The serving runtime: words -> ids -> one ONNX call -> sigmoid -> classes."""

    allow_blank = False

    def __init__(self, manifest: WordCountManifest, session: InferenceSession, max_chars: int):
        self.manifest = manifest
        self.session = session
        self.max_chars = max_chars

    @classmethod
    def from_bundle(
        cls, manifest: ManifestBase, bundle_dir: Path, session: InferenceSession, settings: Settings
    ) -> WordCountRuntime:
        if not isinstance(manifest, WordCountManifest):
            raise TypeError(f"{manifest.name} is a {manifest.task} bundle, not word-count")
        return cls(manifest, session, settings.max_text_chars)

    def prepare(self, texts: list[str], options: RequestOptions) -> WordCountInputs:
        limit = self.manifest.tokenizer.max_length
        rows = [[i + 1 for i, _ in enumerate(t.split()[:limit])] or [0] for t in texts]
        return WordCountInputs(texts, options.top_k, rows)

    def run_prepared(self, items: list[WordCountInputs]) -> list[ClassPrediction]:
        return [self.merge(item, [self.run_slice(item)]) for item in items]

    def run_slice(self, part: WordCountInputs) -> Any:
        width = part.width
        ids = np.zeros((len(part.rows), width), dtype=np.int64)
        for i, row in enumerate(part.rows):
            ids[i, : len(row)] = row
        started = time.perf_counter()
        logits = self.session.run({"input_ids": ids})
        return logits, time.perf_counter() - started

    def merge(self, item: WordCountInputs, parts: list[Any]) -> ClassPrediction:
        logits = np.concatenate([p[0] for p in parts]).astype(np.float64)
        probabilities = 1.0 / (1.0 + np.exp(-logits))
        labels = [
            [
                ClassScore(label=LABELS[k], probability=float(row[k]), threshold=0.5)
                for k in np.argsort(-row, kind="stable")
                if row[k] >= 0.5
            ][: item.top_k]
            for row in probabilities
        ]
        return ClassPrediction(
            labels=labels,
            probabilities=probabilities,
            windows=[1] * item.num_texts,
            tokens=item.tokens,
            timings={"onnx": sum(p[1] for p in parts)},
            text_tokens=[len(row) for row in item.rows],  # one window per text, never cut
            truncated=[False] * item.num_texts,
        )

    def describe(self) -> dict[str, object]:
        return {"head": "multi-label", "min_words": self.manifest.word_count.min_words}


FAMILY = ServingFamily(
    task="word-count",
    manifest=WordCountManifest,
    runtimes={"multi-label": WordCountRuntime.from_bundle},
    route="word-count",
    also_routes=("classify",),
    batch=ClassRecords(classify_results, "labels"),
)


def word_count_graph(min_words: float) -> onnx.ModelProto:
    """logits = [words - (min_words - 0.5), (min_words - 0.5) - words], words = ids > 0."""
    nodes = [
        helper.make_node(
            "Constant", [], ["zero"], value=helper.make_tensor("z", TensorProto.INT64, [], [0])
        ),
        helper.make_node("Greater", ["input_ids", "zero"], ["is_word"]),
        helper.make_node("Cast", ["is_word"], ["word"], to=TensorProto.FLOAT),
        helper.make_node("ReduceSum", ["word", "axis"], ["words"], keepdims=1),
        helper.make_node("Sub", ["words", "cut"], ["long"]),
        helper.make_node("Neg", ["long"], ["short"]),
        helper.make_node("Concat", ["long", "short"], ["logits"], axis=1),
    ]
    graph = helper.make_graph(
        nodes,
        "word_count",
        [helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "tokens"])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 2])],
        initializer=[
            helper.make_tensor("axis", TensorProto.INT64, [1], [1]),
            helper.make_tensor("cut", TensorProto.FLOAT, [], [min_words - 0.5]),
        ],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)


def write_bundle(out: Path, name: str = "word-count", min_words: float = 3) -> Path:
    """A complete bundle of the family: graph, (unused) tokenizer file, manifest."""
    from service.bundle import sha256_of

    out.mkdir(parents=True)
    onnx.save(word_count_graph(min_words), out / "model.onnx")
    (out / "tokenizer.json").write_text("{}\n")
    manifest = WordCountManifest(
        schema_version=4,
        name=name,
        version="1",
        labels=LABELS,
        onnx=OnnxInfo(
            sha256=sha256_of(out / "model.onnx"), opset=17, inputs=["input_ids"], output="logits"
        ),
        tokenizer=TokenizerInfo(max_length=64, stride=0),
        export=ExportInfo(
            created_at="2026-01-01T00:00:00Z", source="tests", duration_s=0.0, versions={}
        ),
        parity=ParityReport(atol=0.0, max_abs_diff=0.0, cases=0),
        word_count=WordCountSpec(min_words=min_words),
    )
    write_manifest(manifest, out)
    return out
