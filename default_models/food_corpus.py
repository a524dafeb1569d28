"""Synthetic Hinglish/English food-ordering NER corpus for the built-in default BERT-CRF model.

Everything is generated from a seed and the word lists and templates in
``default_models/data/food_corpus.json`` (read by :mod:`default_models.corpus_data`), so the
corpus is reproducible.

Three splits, each with its own templates and entity values, pairwise disjoint:

- "test" holds out a quarter of TEMPLATES and of each label's VALUES. It depends on nothing else,
  so adding training material (EXTRA_TEMPLATES, the compositional values) never moves it.
- "dev" holds out a third of what remains of TEMPLATES and VALUES, built the same way as test (the
  hand-written lists only), so it measures the same generalisation to unseen restaurants, dishes
  and phrasings and is a fair model-selection signal that never touches test.
- "train" gets the rest of TEMPLATES and VALUES plus EXTRA_TEMPLATES and compositional values
  built from word lists; no compositional value contains a dev or test value as a whole-word
  phrase.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from default_models.corpus_data import CorpusData

_DATA = CorpusData("food_corpus.json")

LABELS: tuple[str, ...] = ("STORE", "FOOD", "LOC", "QTY", "PREF")

# Values are lower-case and unique across all labels; the surface case is varied at render time.
VALUES: Mapping[str, tuple[str, ...]] = _DATA.mapping("values")

# Placeholders are {LABEL}; at most four entities per template, some templates have none.
TEMPLATES: tuple[str, ...] = _DATA.strings("templates")

# Training-side additions. They only ever feed the train and dev pools, never the test split, so
# the test benchmark (held out from TEMPLATES and VALUES above) stays fixed however much training
# material is added here.
EXTRA_TEMPLATES: tuple[str, ...] = _DATA.strings("extra_templates")

# Entity-value material, combined into compositional values below.
_PROTEINS = _DATA.strings("proteins")
_STYLES = _DATA.strings("styles")
_DISHES = _DATA.strings("dishes")
_SWEET_FLAVOURS = _DATA.strings("sweet_flavours")
_SWEETS = _DATA.strings("sweets")
_OTHER_FOODS = _DATA.strings("other_foods")
_SURNAMES = _DATA.strings("surnames")
_STORE_KINDS = _DATA.strings("store_kinds")
_NICKNAMES = _DATA.strings("nicknames")
_BRAND_WORDS = _DATA.strings("brand_words")
_BRAND_FORMS = _DATA.strings("brand_forms")
_AREAS = _DATA.strings("areas")
_PERSONS = _DATA.strings("persons")
_PLACE_KINDS = _DATA.strings("place_kinds")
_ORDINALS = _DATA.strings("ordinals")
_CITIES = _DATA.strings("cities")
_DIRECTIONS = _DATA.strings("directions")
_SYLLABLES = _DATA.strings("syllables")
_PLACE_ENDINGS = _DATA.strings("place_endings")
_BRAND_ENDINGS = _DATA.strings("brand_endings")
_NUMBERS = _DATA.strings("numbers")
_FRACTIONS = _DATA.strings("fractions")
_UNITS = _DATA.strings("units")
_PREF_WORDS = _DATA.strings("pref_words")
_INGREDIENTS = _DATA.strings("ingredients")
_AMOUNT_WORDS = _DATA.strings("amount_words")
_PREF_PHRASES = _DATA.strings("pref_phrases")

# How many compositional values of each kind feed the training side.
_EXTRA_COUNTS: Mapping[str, tuple[tuple[str, int], ...]] = {
    "FOOD": (
        ("dish", 25),
        ("protein dish", 60),
        ("style dish", 45),
        ("full dish", 60),
        ("sweet", 30),
        ("other", 40),
        ("coined dish", 40),
    ),
    "STORE": (
        ("family", 60),
        ("nickname", 25),
        ("brand", 40),
        ("coined brand", 35),
        ("coined family", 20),
    ),
    "LOC": (
        ("area", 40),
        ("direction", 20),
        ("sector", 25),
        ("person place", 45),
        ("block", 20),
        ("coined place", 25),
        ("coined place kind", 20),
    ),
    "QTY": (("number", 30), ("number unit", 120), ("fraction unit", 30)),
    "PREF": (("word ingredient", 70), ("ingredient amount", 35), ("phrase", 30)),
}


def _coined(rng: random.Random, endings: tuple[str, ...]) -> str:
    """A made-up name such as "zochira" or "kamipur": unseen words teach reliance on context."""
    return "".join(rng.choices(_SYLLABLES, k=rng.choice((2, 3)))) + rng.choice(endings)


def _candidates(kind: str, rng: random.Random) -> list[str]:
    """Every value of one compositional kind (coined kinds: a fixed random sample)."""
    if kind == "dish":
        return [d for d in _DISHES if not d.isdigit()]
    if kind == "protein dish":
        return [f"{p} {d}" for p in _PROTEINS for d in _DISHES]
    if kind == "style dish":
        return [f"{s} {d}" for s in _STYLES for d in _DISHES]
    if kind == "full dish":
        return [f"{p} {s} {d}" for p in _PROTEINS for s in _STYLES for d in _DISHES]
    if kind == "sweet":
        return [f"{f} {s}" for f in _SWEET_FLAVOURS for s in _SWEETS]
    if kind == "other":
        return list(_OTHER_FOODS)
    if kind == "family":
        return [f"{n} {k}" for n in _SURNAMES for k in _STORE_KINDS]
    if kind == "nickname":
        forms = ("{}'s kitchen", "{}'s", "{} ka dhaba", "{} di hatti", "{} chai wala")
        return [f.format(n) for n in _NICKNAMES for f in forms]
    if kind == "brand":
        return [f.format(w) for w in _BRAND_WORDS for f in _BRAND_FORMS]
    if kind == "coined brand":
        return sorted({_coined(rng, _BRAND_ENDINGS) for _ in range(400)})
    if kind == "coined place":
        return sorted({_coined(rng, _PLACE_ENDINGS) for _ in range(400)})
    if kind == "coined dish":  # "zokami", "paneer zokami", "zokami curry"
        shapes = ("{}", "{} {}", "{1} {0}")
        return sorted(
            {
                rng.choice(shapes).format(_coined(rng, ("",)), rng.choice(_PROTEINS + _DISHES))
                for _ in range(400)
            }
        )
    if kind == "coined family":
        return sorted({f"{_coined(rng, ('',))} {rng.choice(_STORE_KINDS)}" for _ in range(400)})
    if kind == "coined place kind":
        return sorted({f"{_coined(rng, ('',))} {rng.choice(_PLACE_KINDS)}" for _ in range(400)})
    if kind == "area":
        return list(_AREAS)
    if kind == "direction":
        return [f"{a} {d}" for a in _AREAS if " " not in a for d in _DIRECTIONS]
    if kind == "sector":
        return [f"sector {n}" for n in range(1, 100)] + [
            f"sector {n} {c}" for n in range(1, 100) for c in _CITIES
        ]
    if kind == "person place":
        return [f"{p} {k}" for p in _PERSONS for k in _PLACE_KINDS]
    if kind == "block":
        return [f"{a} {o} {b}" for a in _AREAS for o in _ORDINALS for b in ("block", "stage")]
    if kind == "number":
        return list(_NUMBERS)
    if kind == "number unit":
        singular = [u for u in _UNITS if not u.endswith("s") and not u.startswith(("g", "m"))]
        articles = [f"a {u}" for u in singular] + [f"a couple of {u}s" for u in singular]
        return [f"{n} {u}" for n in _NUMBERS for u in _UNITS] + articles
    if kind == "fraction unit":
        return [f"{f} {u}" for f in _FRACTIONS for u in _UNITS]
    if kind == "word ingredient":
        return [f"{w} {i}" for w in _PREF_WORDS for i in _INGREDIENTS]
    if kind == "ingredient amount":
        return [f"{i} {a}" for i in _INGREDIENTS for a in _AMOUNT_WORDS]
    if kind == "phrase":
        return list(_PREF_PHRASES)
    raise ValueError(kind)


_PLACEHOLDER = re.compile(r"\{([A-Z]+)\}")
_HELD_OUT_FRACTION = 0.25  # of TEMPLATES and VALUES, for test
_DEV_FRACTION = 1 / 3  # of the rest of TEMPLATES and VALUES, for dev
_SUFFIXES = ("", "?", "!", ".", ", please")
_SUFFIX_WEIGHTS = (60, 12, 8, 12, 8)
_ENTITY_WEIGHT = 3  # templates with entities are drawn 3x as often as zero-entity chit-chat
_FILLER_RATE = 0.25  # train only: chance that a literal gap of a template gets a filler word
_COINED_FILLERS = 200  # made-up filler words (besides the train templates' own words)


@dataclass(frozen=True)
class Span:
    start: int
    end: int
    label: str


@dataclass(frozen=True)
class Example:
    text: str
    spans: tuple[Span, ...]


@dataclass(frozen=True)
class Pools:
    """The templates and entity values one split may draw from."""

    templates: tuple[str, ...]
    values: Mapping[str, tuple[str, ...]]


def template_labels(template: str) -> tuple[str, ...]:
    """Labels of the placeholders in a template, in order."""
    return tuple(_PLACEHOLDER.findall(template))


def _hold_out(
    items: tuple[str, ...], rng: random.Random, fraction: float = _HELD_OUT_FRACTION
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Split items into disjoint (kept, held-out) parts, each in the original order."""
    shuffled = list(items)
    rng.shuffle(shuffled)
    held = frozenset(shuffled[: max(1, round(len(items) * fraction))])
    return tuple(x for x in items if x not in held), tuple(x for x in items if x in held)


def _covers_all(templates: tuple[str, ...]) -> bool:
    """Whether the templates can produce every label and also a zero-entity utterance."""
    found = {label for t in templates for label in template_labels(t)}
    return found == set(LABELS) and any(not template_labels(t) for t in templates)


def _phrases(value: str) -> set[str]:
    """Every run of whole words in a value ("a b c" -> "a", "b", "c", "a b", "b c", "a b c")."""
    words = value.split()
    return {" ".join(words[i:j]) for i in range(len(words)) for j in range(i + 1, len(words) + 1)}


def extra_values(seed: int, held_out: Iterable[str]) -> dict[str, tuple[str, ...]]:
    """Compositional training values per label, sampled from the word lists above.

    None equals a value of VALUES (any label), contains one of held_out (the dev and test values)
    as a whole-word phrase or appears under two labels.
    """
    rng = random.Random(f"{seed}:extra-values")
    banned = set(held_out)
    taken = {value for label in LABELS for value in VALUES[label]}
    values: dict[str, tuple[str, ...]] = {}
    for label in LABELS:
        chosen: list[str] = []
        for kind, count in _EXTRA_COUNTS[label]:
            pool = [
                v for v in _candidates(kind, rng) if v not in taken and not _phrases(v) & banned
            ]
            picked = rng.sample(pool, min(count, len(pool)))
            taken.update(picked)
            chosen.extend(picked)
        values[label] = tuple(chosen)
    return values


def _split_templates(
    templates: tuple[str, ...], rng: random.Random, fraction: float = _HELD_OUT_FRACTION
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    for _ in range(1000):  # re-draw until both parts can yield every label
        kept, held = _hold_out(templates, rng, fraction)
        if _covers_all(kept) and _covers_all(held):
            return kept, held
    raise RuntimeError("cannot split the templates so that both parts cover all labels")


def split_pools(seed: int = 13) -> dict[str, Pools]:
    """Pairwise disjoint train/dev/test pools (see the module docstring)."""
    rng = random.Random(seed)
    rest_templates, test_templates = _split_templates(TEMPLATES, rng)
    rest = {label: _hold_out(VALUES[label], rng) for label in LABELS}
    test = Pools(test_templates, {label: rest[label][1] for label in LABELS})
    rng = random.Random(f"{seed}:dev-pools")
    core_templates, dev_templates = _split_templates(rest_templates, rng, _DEV_FRACTION)
    core = {label: _hold_out(rest[label][0], rng, _DEV_FRACTION) for label in LABELS}
    dev = Pools(dev_templates, {label: core[label][1] for label in LABELS})
    held_out = (v for pool in (dev, test) for label in LABELS for v in pool.values[label])
    extra = extra_values(seed, held_out)
    train = Pools(
        core_templates + EXTRA_TEMPLATES,
        {label: core[label][0] + extra[label] for label in LABELS},
    )
    return {"train": train, "dev": dev, "test": test}


def _transform_case(text: str, title: bool) -> str:
    """ALL CAPS or Title Case, character by character so that span offsets stay valid.

    str.upper()/str.title() may change lengths ("ß" -> "SS") and title() capitalises after
    apostrophes ("Haldiram'S"), so neither is used directly.
    """
    out = []
    for i, char in enumerate(text):
        upper = char.upper()
        word_start = i == 0 or text[i - 1] == " "
        out.append(upper if len(upper) == 1 and (word_start or not title) else char)
    return "".join(out)


def literal_words(templates: Iterable[str]) -> tuple[str, ...]:
    """The words of the templates outside their placeholders, sorted and without repeats."""
    words = {w for t in templates for w in re.findall(r"[a-z']+", _PLACEHOLDER.sub(" ", t))}
    return tuple(sorted(words))


def _fillers(templates: tuple[str, ...], seed: int) -> tuple[str, ...]:
    """Filler words for training: the templates' own words plus as many made-up short words.

    The made-up ones stand for the words of phrasings never seen in training: next to an entity,
    an unfamiliar word is not therefore part of it.
    """
    rng = random.Random(f"{seed}:fillers")
    words = literal_words(templates)
    coined = {
        "".join(rng.choices(_SYLLABLES, k=rng.choice((1, 2)))) for _ in range(_COINED_FILLERS)
    }
    return words + tuple(sorted(coined - set(words)))


def _insert_word(part: str, word: str, rng: random.Random, first: bool, last: bool) -> str:
    """Slip a word into a template's literal text at a word boundary."""
    slots = [(i + 1, f"{word} ") for i, char in enumerate(part) if char == " "]
    if first:
        slots.append((0, f"{word} "))
    if last:
        slots.append((len(part), f" {word}"))
    if not slots:
        return part
    at, insert = rng.choice(slots)
    return part[:at] + insert + part[at:]


def render(
    template: str,
    values: Mapping[str, tuple[str, ...]],
    rng: random.Random,
    fillers: tuple[str, ...] = (),
) -> Example:
    """Fill a template with random values and random surface noise, tracking exact offsets.

    fillers (training-time augmentation): words that may be slipped into the literal text, one
    per gap with probability _FILLER_RATE, so that the model learns to bound entities by what
    they look like rather than by the exact words of the templates it has seen. Without fillers
    no random numbers are drawn for them, so the other splits render exactly as before.
    """
    parts = _PLACEHOLDER.split(template)  # literal, label, literal, label, ..., literal
    text, spans = "", []
    for i, part in enumerate(parts):
        if i % 2 == 0:
            if fillers and rng.random() < _FILLER_RATE:
                word = rng.choice(fillers)
                part = _insert_word(part, word, rng, first=i == 0, last=i == len(parts) - 1)
            text += part.replace(" ", "  ", 1) if rng.random() < 0.04 else part
            continue
        value = rng.choice(values[part])
        spans.append(Span(len(text), len(text) + len(value), part))
        text += value
        # "misal, kam teekha": a comma only between two entities and never inside "2 misal".
        if part != "QTY" and parts[i + 1] == " " and rng.random() < 0.15:
            text += ","
    text += rng.choices(_SUFFIXES, weights=_SUFFIX_WEIGHTS)[0]
    roll = rng.random()
    if roll < 0.06:
        text = _transform_case(text, title=False)
    elif roll < 0.16:
        text = _transform_case(text, title=True)
    return Example(text, tuple(spans))


def generate_splits(
    seed: int = 13, n_train: int = 2400, n_dev: int = 300, n_test: int = 600
) -> dict[str, list[Example]]:
    """Generate the train/dev/test splits.

    Each split samples from its own seeded stream, so changing n_train leaves dev and test as they
    were. Only train is augmented with filler words (taken from its own templates); dev and test
    are rendered like real held-out data.
    """
    pools = split_pools(seed)
    sizes = {"train": n_train, "dev": n_dev, "test": n_test}
    splits: dict[str, list[Example]] = {}
    for name, size in sizes.items():
        rng = random.Random(f"{seed}:{name}")
        pool = pools[name]
        fillers = _fillers(pool.templates, seed) if name == "train" else ()
        weights = [_ENTITY_WEIGHT if template_labels(t) else 1 for t in pool.templates]
        templates = rng.choices(pool.templates, weights=weights, k=size)
        splits[name] = [render(t, pool.values, rng, fillers) for t in templates]
    return splits


def write_jsonl(examples: Iterable[Example], path: str | Path) -> None:
    """Write one {"text", "entities": [{"start", "end", "label"}]} object per line, UTF-8."""
    with Path(path).open("w", encoding="utf-8") as f:
        for ex in examples:
            entities = [{"start": s.start, "end": s.end, "label": s.label} for s in ex.spans]
            f.write(json.dumps({"text": ex.text, "entities": entities}, ensure_ascii=False) + "\n")


def read_jsonl(path: str | Path) -> list[Example]:
    """Read examples written by write_jsonl (blank lines are skipped)."""
    examples = []
    with Path(path).open(encoding="utf-8") as f:
        for line in f:
            if not line.strip():
                continue
            record = json.loads(line)
            spans = tuple(Span(e["start"], e["end"], e["label"]) for e in record["entities"])
            examples.append(Example(record["text"], spans))
    return examples
