"""Entity micro-F1 (seqeval) of a bundle as served: the service's own pipeline on raw texts.

Gold and predicted entities are both turned into BIO tags over the service's words, so the figure
includes tokenization, windowing, constrained Viterbi and offset mapping, not just the network.
"""

from __future__ import annotations

from pathlib import Path

from seqeval.metrics import classification_report, f1_score

from default_models.food_corpus import Example
from families.ner.runtime import NerPipeline
from families.ner.spans import bio_tags
from service.runtime.loader import load_runtime
from service.settings import Settings
from service.text.tokenizer import words_of


def evaluate_bundle(bundle_dir: Path, examples: list[Example]) -> dict[str, object]:
    pipeline = load_runtime(
        bundle_dir, Settings(bundles_dir=bundle_dir.parent, max_text_chars=10_000)
    ).runtime
    if not isinstance(pipeline, NerPipeline):
        raise ValueError(f"{bundle_dir} is not an NER bundle")
    texts = [e.text for e in examples]
    predicted = []
    for begin in range(0, len(texts), 64):
        predicted.extend(pipeline.predict(texts[begin : begin + 64]).entities)
    gold_tags, predicted_tags = [], []
    for example, encoded, entities in zip(
        examples, pipeline.tokenizer.encode_batch(texts), predicted, strict=True
    ):
        starts = [int(s) for s in words_of(encoded).char_start]
        gold_tags.append(bio_tags(starts, [(s.start, s.end, s.label) for s in example.spans]))
        predicted_tags.append(bio_tags(starts, [(e.start, e.end, e.label) for e in entities]))
    return {
        "entity_micro_f1": round(float(f1_score(gold_tags, predicted_tags)), 4),
        "sentences": len(examples),
        "report": classification_report(gold_tags, predicted_tags, digits=3),
    }
