"""Entity micro-F1 (seqeval) of a bundle as served: the service's own pipeline on raw texts.

Gold and predicted entities are both turned into BIO tags over the service's words, so the figure
includes tokenization, windowing, constrained Viterbi and offset mapping, not just the network.
"""

from __future__ import annotations

from pathlib import Path

from seqeval.metrics import classification_report, f1_score

from default_models.food_corpus import Example
from service.bundle import NerManifest, verify_bundle
from service.ner.pipeline import NerPipeline
from service.runtime.cpus import available_cpus
from service.runtime.session import OnnxSession
from service.text.tokenizer import words_of


def _tags(starts: list[int], spans: list[tuple[int, int, str]]) -> list[str]:
    tags = ["O"] * len(starts)
    for begin, end, label in spans:
        inside = [i for i, s in enumerate(starts) if begin <= s < end]
        for n, i in enumerate(inside):
            tags[i] = f"{'B' if n == 0 else 'I'}-{label}"
    return tags


def evaluate_bundle(bundle_dir: Path, examples: list[Example]) -> dict[str, object]:
    manifest = verify_bundle(bundle_dir)
    if not isinstance(manifest, NerManifest):
        raise ValueError(f"{bundle_dir} is not an NER bundle")
    session = OnnxSession(bundle_dir / manifest.onnx.file, manifest.onnx.output, available_cpus())
    pipeline = NerPipeline(manifest, bundle_dir, session)
    texts = [e.text for e in examples]
    predicted = []
    for begin in range(0, len(texts), 64):
        predicted.extend(pipeline.predict(texts[begin : begin + 64]).entities)
    gold_tags, predicted_tags = [], []
    for example, encoded, entities in zip(
        examples, pipeline.tokenizer.encode_batch(texts), predicted, strict=True
    ):
        starts = [int(s) for s in words_of(encoded).char_start]
        gold_tags.append(_tags(starts, [(s.start, s.end, s.label) for s in example.spans]))
        predicted_tags.append(_tags(starts, [(e.start, e.end, e.label) for e in entities]))
    return {
        "entity_micro_f1": round(float(f1_score(gold_tags, predicted_tags)), 4),
        "sentences": len(examples),
        "report": classification_report(gold_tags, predicted_tags, digits=3),
    }
