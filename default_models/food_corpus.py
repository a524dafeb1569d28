"""Synthetic Hinglish/English food-ordering NER corpus for the built-in default BERT-CRF model.

Everything is generated from a seed, so the corpus is reproducible without shipping data. The
"test" split uses entity values and sentence templates held out from "train"/"dev", so test F1
measures generalisation to unseen restaurants, dishes and phrasings rather than memorisation.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

LABELS: tuple[str, ...] = ("STORE", "FOOD", "LOC", "QTY", "PREF")

# Values are lower-case and unique across all labels; the surface case is varied at render time.
# fmt: off
VALUES: Mapping[str, tuple[str, ...]] = {
    "STORE": (
        "tushar", "inayat cafe", "sharma sweets", "haldiram's", "café coffee day", "bikanervala",
        "domino's", "burger king", "mcdonald's", "kfc", "subway", "behrouz biryani",
        "paradise biryani", "saravana bhavan", "sagar ratna", "anand sweets", "chitale bandhu",
        "vaishali", "goodluck cafe", "bademiya", "britannia and co", "leopold cafe", "theobroma",
        "keventers", "chaayos", "faasos", "oven story", "la pino'z", "karim's", "moti mahal",
        "gulati", "punjab grill", "shiv sagar", "guru kripa", "mama's kitchen", "joshi wadewale",
        "kayani bakery", "gopal sweets", "bombay canteen", "agarwal bhojnalaya",
        "mehta's snack corner", "annapurna mess", "hotel sai palace", "sukh sagar", "zaffran",
    ),
    "FOOD": (
        "misal", "pizza", "paneer tikka", "masala dosa", "chole bhature", "vada pav", "pav bhaji",
        "biryani", "chicken biryani", "butter chicken", "dal makhani", "naan", "garlic naan",
        "rajma chawal", "idli", "sambar vada", "poha", "upma", "samosa", "kachori", "jalebi",
        "gulab jamun", "rasmalai", "kaju katli", "momos", "hakka noodles", "manchurian",
        "fried rice", "burger", "french fries", "cold coffee", "masala chai", "mango lassi",
        "thali", "aloo paratha", "paneer butter masala", "kadhai paneer", "tandoori roti",
        "shawarma", "chicken 65", "fish curry", "egg bhurji", "dhokla", "pani puri", "sev puri",
        "bhel puri", "crème brûlée", "café latte",
    ),
    "LOC": (
        "andheri west", "sector 15", "mg road", "koramangala 5th block", "bandra", "powai",
        "indiranagar", "connaught place", "salt lake", "baner", "kothrud", "viman nagar",
        "hinjewadi phase 1", "dlf phase 3", "cyber city", "hsr layout", "whitefield", "juhu",
        "malad east", "thane west", "vashi", "lajpat nagar", "karol bagh", "saket",
        "dwarka sector 10", "gachibowli", "banjara hills", "jubilee hills", "t nagar",
        "anna nagar", "adyar", "park street", "new town", "aundh", "wakad", "goregaon east",
        "borivali west", "colaba", "vile parle", "civil lines", "gomti nagar", "hazratganj",
        "navrangpura", "sector 62 noida",
    ),
    "QTY": (
        "1", "2", "3", "4", "5", "6", "8", "10", "12", "ek", "do", "teen", "char", "paanch",
        "one", "two", "three", "four", "five", "a dozen", "half dozen", "3 plate", "ek plate",
        "do plate", "2 plates", "half plate", "full plate", "half kg", "1 kg", "250 gram",
        "500 gm", "aadha kilo", "ek kilo", "4 pieces", "6 pcs", "ek packet", "2 packets",
        "3 bowls", "do glass",
    ),
    "PREF": (
        "extra spicy", "kam teekha", "without onion", "jain", "no cheese", "less oil",
        "bina pyaaz", "bina lehsun", "extra cheese", "no garlic", "mild", "medium spicy",
        "zyada teekha", "kam tel", "less sugar", "no sugar", "bina cheeni", "sugar free",
        "extra butter", "well done", "no mayo", "gluten free", "vegan", "double cheese",
        "thin crust", "extra chutney", "no coriander", "bina dhaniya", "less salt", "kam namak",
        "extra gravy", "half fry", "no ice", "kam meetha", "without tomato", "no mushrooms",
    ),
}
# fmt: on

# Placeholders are {LABEL}; at most four entities per template, some templates have none.
TEMPLATES: tuple[str, ...] = (
    # Hinglish
    "{STORE} se {QTY} {FOOD} mangwao",
    "{STORE} se {FOOD} chahiye",
    "{QTY} {FOOD} bhejo, {PREF}",
    "{STORE} se {QTY} {FOOD} {LOC} bhej do",
    "mujhe {QTY} {FOOD} chahiye {STORE} se",
    "{LOC} pe {QTY} {FOOD} deliver karo",
    "{FOOD} {PREF} banana",
    "kya {STORE} se {FOOD} mil sakta hai",
    "{STORE} ka {FOOD} order karna hai",
    "{QTY} {FOOD} aur {QTY} {FOOD} bhejo",
    "{FOOD} {PREF} chahiye {LOC} mein",
    "bhai {STORE} se {FOOD} mangwa do",
    "{LOC} mein {STORE} deliver karta hai kya",
    "{STORE} ka menu dikhao",
    "{FOOD} kitne ka hai {STORE} mein",
    "please {QTY} {FOOD} {LOC} bhejiye",
    "{QTY} {FOOD} {PREF} wala bhejna",
    "aaj {STORE} se kuch mangwate hain, {QTY} {FOOD}",
    "{FOOD} mein {PREF} karna",
    "mera order {LOC} pe bhejna",
    "{STORE} wale {FOOD} ko {PREF} banana",
    "ek baar {FOOD} {STORE} se try karte hain",
    "{QTY} {FOOD} pack kar do",
    "{LOC} ke paas koi {FOOD} milega",
    "order mein {PREF} likh dena",
    "menu dikhao",
    "mera order kahan hai",
    "order cancel kar do",
    "aaj kya special hai",
    "delivery kitni der mein hogi",
    # English
    "order {QTY} {FOOD} from {STORE} to {LOC}",
    "i want {QTY} {FOOD} from {STORE}",
    "can i get {FOOD} {PREF} from {STORE}",
    "send {QTY} {FOOD} to {LOC}",
    "get me {FOOD} from {STORE}",
    "deliver {QTY} {FOOD} to {LOC}, {PREF}",
    "does {STORE} deliver to {LOC}",
    "i would like {QTY} {FOOD}, {PREF}",
    "please make the {FOOD} {PREF}",
    "show me the menu of {STORE}",
    "is {FOOD} available at {STORE}",
    "add {QTY} {FOOD} to my order",
    "how much is {FOOD} at {STORE}",
    "my address is {LOC}",
    "{QTY} {FOOD} and {QTY} {FOOD} please",
    "could you send {FOOD} from {STORE} to {LOC}",
    "make it {PREF}",
    "from {STORE}, {QTY} {FOOD} to {LOC}",
    "{FOOD} from {STORE}, {PREF}, deliver to {LOC}",
    "what time does {STORE} close",
    "any {PREF} options at {STORE}",
    "i'm at {LOC}, send {QTY} {FOOD}",
    "what are your timings",
    "show me the menu",
    "where is my order",
    "cancel my order",
    "do you have any offers today",
    "thanks a lot",
)

_PLACEHOLDER = re.compile(r"\{([A-Z]+)\}")
_HELD_OUT_FRACTION = 0.25
_SUFFIXES = ("", "?", "!", ".", ", please")
_SUFFIX_WEIGHTS = (60, 12, 8, 12, 8)
_ENTITY_WEIGHT = 3  # templates with entities are drawn 3x as often as zero-entity chit-chat


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
    items: tuple[str, ...], rng: random.Random
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Split items into disjoint (kept, held-out) parts, each in the original order."""
    shuffled = list(items)
    rng.shuffle(shuffled)
    held = frozenset(shuffled[: max(1, round(len(items) * _HELD_OUT_FRACTION))])
    return tuple(x for x in items if x not in held), tuple(x for x in items if x in held)


def _covers_all(templates: tuple[str, ...]) -> bool:
    """Whether the templates can produce every label and also a zero-entity utterance."""
    found = {label for t in templates for label in template_labels(t)}
    return found == set(LABELS) and any(not template_labels(t) for t in templates)


def split_pools(seed: int = 13) -> dict[str, Pools]:
    """Disjoint train/held-out pools; "dev" shares the train pools, "test" gets the held-out."""
    rng = random.Random(seed)
    for _ in range(1000):  # re-draw until both template parts can yield every label
        train_templates, test_templates = _hold_out(TEMPLATES, rng)
        if _covers_all(train_templates) and _covers_all(test_templates):
            break
    else:  # pragma: no cover - only reachable if TEMPLATES lose label coverage
        raise RuntimeError("cannot split TEMPLATES so that both parts cover all labels")
    parts = {label: _hold_out(VALUES[label], rng) for label in LABELS}
    train = Pools(train_templates, {label: parts[label][0] for label in LABELS})
    test = Pools(test_templates, {label: parts[label][1] for label in LABELS})
    return {"train": train, "dev": train, "test": test}


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


def render(template: str, values: Mapping[str, tuple[str, ...]], rng: random.Random) -> Example:
    """Fill a template with random values and random surface noise, tracking exact offsets."""
    parts = _PLACEHOLDER.split(template)  # literal, label, literal, label, ..., literal
    text, spans = "", []
    for i, part in enumerate(parts):
        if i % 2 == 0:
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
    were.
    """
    pools = split_pools(seed)
    sizes = {"train": n_train, "dev": n_dev, "test": n_test}
    splits: dict[str, list[Example]] = {}
    for name, size in sizes.items():
        rng = random.Random(f"{seed}:{name}")
        pool = pools[name]
        weights = [_ENTITY_WEIGHT if template_labels(t) else 1 for t in pool.templates]
        templates = rng.choices(pool.templates, weights=weights, k=size)
        splits[name] = [render(t, pool.values, rng) for t in templates]
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
