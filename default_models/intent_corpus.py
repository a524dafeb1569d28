"""Synthetic Hinglish/English food-ordering *intent* corpus for the built-in intent classifier.

Every utterance is generated from a seed and the templates in
``default_models/data/intent_corpus.json`` (read by :mod:`default_models.corpus_data`), so the
corpus is reproducible.
Entity slots are filled from the NER corpus' own value pools (:mod:`default_models.food_corpus`),
so the same utterance ("order 2 masala dosa from saravana bhavan") makes sense to both default
models and ``/v1/parse`` gets an intent and entities from it.

Splits, per intent:

- "test" holds out a quarter of the intent's TEMPLATES (at least two) and is rendered with the
  NER corpus' test-split entity values: it measures generalisation to phrasings never seen in
  training, not memorisation of templates.
- "dev" holds out a fifth of the rest (at least one) with the NER dev values; it is what an
  abstain threshold would be chosen on, never test.
- "train" gets the remaining templates plus EXTRA_TEMPLATES (train-only phrasings: more ways to
  say each intent, in English and Hinglish), the NER train values and random filler words. The
  extra templates never feed dev or test, so adding them leaves both benchmarks where they were.

OUT_OF_SCOPE utterances (weather, cabs, music: not food ordering) are split the same way. They
carry the label None: no class stands for them, they are what a calibrated abstain threshold
should turn down.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from default_models.corpus_data import CorpusData
from default_models.food_corpus import split_pools

_DATA = CorpusData("intent_corpus.json")

TEMPLATES: Mapping[str, tuple[str, ...]] = _DATA.mapping("templates")

OUT_OF_SCOPE: tuple[str, ...] = _DATA.strings("out_of_scope")

# Train-only phrasings per intent (and "oos"): with a dozen training templates per intent the
# model learnt each intent from a few key words and missed held-out phrasings; these widen what
# train covers without moving the held-out dev/test templates above.
EXTRA_TEMPLATES: Mapping[str, tuple[str, ...]] = _DATA.mapping("extra_templates")

# Filler words slipped in around training utterances (before or after), so that the model learns
# intents from content, not from where a template starts and ends.
PREFIXES: tuple[str, ...] = _DATA.strings("prefixes")
SUFFIXES: tuple[str, ...] = _DATA.strings("suffixes")

INTENTS: tuple[str, ...] = tuple(TEMPLATES)
_PLACEHOLDER = re.compile(r"\{([A-Z]+)\}")
_TEST_FRACTION = 0.25
_DEV_FRACTION = 0.2
_FILLER_RATE = 0.3  # train only: chance of a prefix, and again of a suffix
_PUNCTUATION = ("", "", "", "?", "!", ".")


@dataclass(frozen=True)
class Utterance:
    text: str
    intent: str | None  # None: out of scope
    template: str = ""  # what it was rendered from (empty when read back from JSON Lines)


def _hold_out(
    items: tuple[str, ...], rng: random.Random, fraction: float, least: int
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Disjoint (kept, held-out) parts of ``items``, each in the original order."""
    shuffled = list(items)
    rng.shuffle(shuffled)
    held = frozenset(shuffled[: max(least, round(len(items) * fraction))])
    return tuple(x for x in items if x not in held), tuple(x for x in items if x in held)


def split_templates(seed: int = 13) -> dict[str, dict[str, tuple[str, ...]]]:
    """{split: {intent or "oos": templates}}; the three splits' templates are pairwise disjoint.

    Dev and test are held out of TEMPLATES/OUT_OF_SCOPE only (the draws do not depend on
    EXTRA_TEMPLATES); train gets the rest plus the intent's extra templates.
    """
    rng = random.Random(f"{seed}:intent-templates")
    out: dict[str, dict[str, tuple[str, ...]]] = {"train": {}, "dev": {}, "test": {}}
    for intent, templates in (*TEMPLATES.items(), ("oos", OUT_OF_SCOPE)):
        rest, test = _hold_out(templates, rng, _TEST_FRACTION, 2)
        train, dev = _hold_out(rest, rng, _DEV_FRACTION, 1)
        train += EXTRA_TEMPLATES.get(intent, ())
        out["train"][intent], out["dev"][intent], out["test"][intent] = train, dev, test
    return out


def render(
    template: str, values: Mapping[str, tuple[str, ...]], rng: random.Random, fillers: bool
) -> str:
    """Fill a template's entity slots, then vary punctuation, case and (train) fillers."""
    text = _PLACEHOLDER.sub(lambda m: rng.choice(values[m.group(1)]), template)
    if fillers and rng.random() < _FILLER_RATE:
        text = f"{rng.choice(PREFIXES)}{rng.choice((' ', ', '))}{text}"
    if fillers and rng.random() < _FILLER_RATE:
        text = f"{text}{rng.choice((' ', ', '))}{rng.choice(SUFFIXES)}"
    text += rng.choice(_PUNCTUATION)
    roll = rng.random()
    if roll < 0.05:
        text = text.upper()
    elif roll < 0.2:
        text = text[:1].upper() + text[1:]
    return text


def generate_splits(
    seed: int = 13, per_intent: Mapping[str, int] | None = None, oos: bool = True
) -> dict[str, list[Utterance]]:
    """Label-balanced draws: ``per_intent[split]`` utterances of every intent, as many OOS.

    Each split samples from its own seeded stream, so its size never changes the others. Dev and
    test keep each distinct text once (a short template such as "cancel my order" is drawn many
    times), so they hold up to ``per_intent`` utterances per intent and no repeats.
    ``oos=False`` leaves the out-of-scope utterances out (training a closed-set classifier).
    """
    sizes = {"train": 300, "dev": 60, "test": 120, **(per_intent or {})}
    templates = split_templates(seed)
    pools = split_pools(seed)
    splits: dict[str, list[Utterance]] = {}
    for name, size in sizes.items():
        rng = random.Random(f"{seed}:intent-{name}")
        values = pools[name].values
        examples = []
        for intent in (*INTENTS, *(("oos",) if oos else ())):
            label = None if intent == "oos" else intent
            drawn = [
                Utterance(render(t, values, rng, fillers=name == "train"), label, t)
                for t in rng.choices(templates[name][intent], k=size)
            ]
            if name != "train":
                first = {u.text: i for i, u in reversed(list(enumerate(drawn)))}
                drawn = [u for i, u in enumerate(drawn) if first[u.text] == i]
            examples.extend(drawn)
        rng.shuffle(examples)
        splits[name] = examples
    return splits


def write_jsonl(examples: Iterable[Utterance], path: str | Path) -> None:
    """One {"text", "labels"} object per line, UTF-8: ``labels`` is [intent], or [] for out of
    scope (the format ``python -m export calibrate`` reads for single-label bundles)."""
    with Path(path).open("w", encoding="utf-8") as f:
        for ex in examples:
            labels = [ex.intent] if ex.intent else []
            f.write(json.dumps({"text": ex.text, "labels": labels}, ensure_ascii=False) + "\n")


def read_jsonl(path: str | Path) -> list[Utterance]:
    """Read utterances written by :func:`write_jsonl`."""
    with Path(path).open(encoding="utf-8") as f:
        return [
            Utterance(r["text"], r["labels"][0] if r["labels"] else None)
            for r in (json.loads(line) for line in f if line.strip())
        ]
