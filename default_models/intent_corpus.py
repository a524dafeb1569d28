"""Synthetic Hinglish/English food-ordering *intent* corpus for the built-in intent classifier.

Every utterance is generated from a seed, so the corpus is reproducible without shipping data.
Entity slots are filled from the NER corpus' own value pools (:mod:`default_models.food_corpus`),
so the same utterance ("order 2 masala dosa from saravana bhavan") makes sense to both default
models and ``/v1/parse`` gets an intent and entities from it.

Splits, per intent:

- "test" holds out a quarter of the intent's TEMPLATES (at least two) and is rendered with the
  NER corpus' test-split entity values: it measures generalisation to phrasings never seen in
  training, not memorisation of templates.
- "dev" holds out a fifth of the rest (at least one) with the NER dev values; it is what an
  abstain threshold would be chosen on, never test.
- "train" gets the remaining templates, the NER train values and random filler words.

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

from default_models.food_corpus import split_pools

# fmt: off
TEMPLATES: Mapping[str, tuple[str, ...]] = {
    "order": (
        "order {QTY} {FOOD} from {STORE}",
        "{STORE} se {QTY} {FOOD} mangwao",
        "i want {QTY} {FOOD}",
        "get me {FOOD} from {STORE}",
        "mujhe {QTY} {FOOD} chahiye",
        "{QTY} {FOOD} bhej do {LOC} pe",
        "can i get {QTY} {FOOD} delivered to {LOC}",
        "i'd like to order {FOOD}, {PREF}",
        "{FOOD} order karna hai {STORE} se",
        "send {QTY} {FOOD} to {LOC}",
        "place an order for {QTY} {FOOD}",
        "ek {FOOD} {PREF} bhejna",
        "i'll have the {FOOD} from {STORE}",
        "book {QTY} {FOOD} for lunch",
        "{FOOD} mangwa do jaldi",
        "we need {QTY} {FOOD} and {FOOD} at {LOC}",
        "order karo {QTY} {FOOD}",
        "i want to order {FOOD} from {STORE}",
        "{QTY} {FOOD} {PREF} please",
        "can you order {FOOD} for me",
        "ek order {FOOD} ka laga do",
        "let's get {FOOD} from {STORE} tonight",
        "{FOOD} chahiye {LOC} mein",
        "i'm hungry, order {QTY} {FOOD}",
        "buy {QTY} {FOOD} from {STORE}",
        "please deliver {FOOD} to {LOC}",
    ),
    "track": (
        "where is my order",
        "mera order kahan hai",
        "how long will my {FOOD} take",
        "track my order from {STORE}",
        "when will the delivery reach {LOC}",
        "delivery boy kab aayega",
        "is my {FOOD} on the way",
        "order status batao",
        "how far is the rider",
        "{STORE} wala order abhi tak nahi aaya",
        "what is the eta for my food",
        "kitni der lagegi",
        "has my order from {STORE} been picked up",
        "live location of my delivery",
        "why is my order taking so long",
        "order kab tak aayega",
        "track the {FOOD} i ordered",
        "is my order from {STORE} ready",
        "how many minutes more for delivery",
        "where is the delivery boy",
        "abhi tak khana nahi aaya, kahan hai",
        "check my order status",
        "is the rider near {LOC}",
        "has my order been dispatched",
    ),
    "cancel": (
        "cancel my order",
        "order cancel kar do",
        "please cancel the {FOOD} from {STORE}",
        "i don't want the {FOOD} anymore, cancel it",
        "mujhe order nahi chahiye, cancel karo",
        "stop my order from {STORE}",
        "cancel the delivery to {LOC}",
        "{STORE} wala order cancel karna hai",
        "call off my order",
        "abort the order please",
        "i changed my mind, cancel everything",
        "{QTY} {FOOD} wala order hata do",
        "can i still cancel my order",
        "cancel karo jaldi",
        "please cancel it",
        "i want to cancel my order",
        "cancel the {QTY} {FOOD}",
        "order radd kar do",
        "don't send the order, cancel it",
        "cancellation chahiye",
        "cancel my order from {STORE} right now",
        "cancel kar do bhai, nahi chahiye",
        "how do i cancel the {FOOD}",
        "cancel the order i just placed",
    ),
    "modify": (
        "add {QTY} {FOOD} to my order",
        "change my address to {LOC}",
        "make the {FOOD} {PREF}",
        "order mein {QTY} {FOOD} aur daal do",
        "remove {FOOD} from my order",
        "replace the {FOOD} with {FOOD}",
        "address badal do, {LOC} bhejna",
        "{FOOD} ko {PREF} kar dena",
        "update my order: {QTY} {FOOD} instead",
        "one more {FOOD} please in the same order",
        "deliver to {LOC} instead",
        "{PREF} likh do order mein",
        "change the quantity to {QTY}",
        "swap my {FOOD} for {FOOD}",
        "add {FOOD} to the same order",
        "can i change my order",
        "order change karna hai",
        "{FOOD} hata ke {FOOD} daal do",
        "make it {QTY} instead",
        "add a note: {PREF}",
        "change the delivery address to {LOC}",
        "include {QTY} {FOOD} in my order too",
        "edit my order, no {FOOD}",
        "update the address, i'm at {LOC} now",
    ),
    "complain": (
        "the {FOOD} was cold",
        "{FOOD} bilkul thanda tha",
        "i got the wrong order from {STORE}",
        "my {FOOD} is missing",
        "the food from {STORE} was stale",
        "order bahut late aaya",
        "the delivery guy was rude",
        "{FOOD} mein baal tha",
        "i want a refund for the {FOOD}",
        "packet phata hua tha",
        "this is the worst service, {STORE} spilled everything",
        "you charged me twice",
        "{QTY} {FOOD} ordered but only one came",
        "khana kharab tha, paise wapas karo",
        "the {FOOD} tasted bad",
        "food was terrible",
        "my order arrived late and cold",
        "wrong item delivered, i ordered {FOOD}",
        "{STORE} ne galat order bheja",
        "i want my money back",
        "the {FOOD} was undercooked",
        "quality bahut kharab thi",
        "i am not happy with the {FOOD}",
        "my {FOOD} was spilled in the bag",
    ),
    "menu": (
        "show me the menu of {STORE}",
        "{STORE} ka menu dikhao",
        "how much is {FOOD} at {STORE}",
        "is {FOOD} available",
        "does {STORE} deliver to {LOC}",
        "what time does {STORE} close",
        "{FOOD} kitne ka hai",
        "any {PREF} options",
        "what do you recommend",
        "aaj kya special hai",
        "is {STORE} open now",
        "do you have any offers today",
        "which restaurants near {LOC} serve {FOOD}",
        "{LOC} mein {FOOD} milta hai kya",
        "what's on the menu",
        "price of {FOOD}",
        "what are the timings of {STORE}",
        "do you deliver to {LOC}",
        "is there a {PREF} option for {FOOD}",
        "{STORE} mein kya kya milta hai",
        "what desserts do you have",
        "how much does delivery cost",
        "which {FOOD} is best at {STORE}",
        "are there any discounts on {FOOD}",
    ),
    "greet": (
        "hi",
        "hello",
        "hey there",
        "namaste",
        "good morning",
        "good evening",
        "hello, anyone there",
        "hi bhaiya",
        "yo",
        "kaise ho",
        "hey, good afternoon",
        "hola",
        "hi there",
        "hello ji",
        "hey",
        "good night",
        "hii",
        "namaskar",
        "hello, i need help",
        "hey buddy",
    ),
    "thanks": (
        "thanks",
        "thank you so much",
        "shukriya",
        "dhanyavaad",
        "bye",
        "goodbye",
        "thanks, that's all",
        "ok bye",
        "great, thanks a lot",
        "see you",
        "bas itna hi, thanks",
        "cheers",
        "thank you",
        "thanks bhai",
        "bye bye",
        "ok thanks",
        "thanks for the help",
        "alvida",
        "shukriya, bas",
        "that's all, thank you",
    ),
}

OUT_OF_SCOPE: tuple[str, ...] = (
    "what's the weather today",
    "book a cab to the airport",
    "play some music",
    "set an alarm for 7",
    "who won the cricket match",
    "kal barish hogi kya",
    "tell me a joke",
    "what is the capital of france",
    "recharge my phone",
    "how do i reset my password for email",
    "train ki ticket book karo",
    "translate hello to spanish",
    "what's the news",
    "remind me to call mom",
    "how tall is mount everest",
    "flight status check karo",
        "what's the time in london",
        "send an email to my boss",
        "book a movie ticket",
        "how do i learn python",
        "what is 25 times 4",
        "mera bijli ka bill bharo",
        "open youtube",
        "find a hotel in goa",
)

# Filler words slipped in around training utterances (before or after), so that the model learns
# intents from content, not from where a template starts and ends.
PREFIXES: tuple[str, ...] = (
    "hey", "hi", "bhai", "yaar", "please", "ok", "so", "umm", "arre", "sir", "listen", "boss",
    "hello", "actually", "acha", "dekho",
)
SUFFIXES: tuple[str, ...] = (
    "please", "yaar", "jaldi", "asap", "bhai", "now", "ok", "thanks", "na", "pls", "abhi",
)
# fmt: on

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
    """{split: {intent or "oos": templates}}; the three splits' templates are pairwise disjoint."""
    rng = random.Random(f"{seed}:intent-templates")
    out: dict[str, dict[str, tuple[str, ...]]] = {"train": {}, "dev": {}, "test": {}}
    for intent, templates in (*TEMPLATES.items(), ("oos", OUT_OF_SCOPE)):
        rest, test = _hold_out(templates, rng, _TEST_FRACTION, 2)
        train, dev = _hold_out(rest, rng, _DEV_FRACTION, 1)
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
