"""Synthetic court opinions with multi-label procedural postures, for the default posture model.

Everything is generated from a seed and the phrasings and word lists in
``default_models/data/legal_corpus.json`` (read by :mod:`default_models.corpus_data`), so the
corpus is reproducible.

A document is generic legal boilerplate (caption, background, procedural history, standard of
review, discussion with citations, conclusion) with posture *cue* sentences inserted at random
sentence positions anywhere in the text, so a long document must be windowed to find them. Some
*distractor* sentences mention a posture term in a context that does not make it the document's
posture ("the court previously denied a motion to dismiss, and that ruling is not before us"), so
keyword matching alone is not enough.

A third of the cue phrasings, distractor frames and mentions, party surnames, company names and
boilerplate sentences is held out from training: validation and test documents use only those,
so their figures measure some generalisation. Validation and test share that pool, so that they
are two samples of one distribution and per-class thresholds tuned on validation carry over to
test. Each split has its own random stream, so validation and test do not move when ``n_train``
changes.

:func:`annotate` finds the cue and distractor sentences in a text again (the generator's
templates compiled to patterns), so training can label windows by the cues they contain.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from default_models.corpus_data import CorpusData

_DATA = CorpusData("legal_corpus.json")

POSTURES: tuple[str, ...] = (
    "On Appeal",
    "Motion to Dismiss",
    "Motion for Summary Judgment",
    "Motion for Preliminary Injunction",
    "Motion to Compel",
    "Petition for Writ of Habeas Corpus",
)
SPLITS: tuple[str, ...] = ("train", "validation", "test")

# Slots: {p} / {d} the first / second party of the document (name, sometimes with a role),
# {court} a lower court, {date}, {act} an act to enjoin, {crime}; {mention} only in distractors.
CUES: Mapping[str, tuple[str, ...]] = _DATA.mapping("cues")

# A posture term in a context that does not make it the posture of the document.
DISTRACTOR_FRAMES: tuple[str, ...] = _DATA.strings("distractor_frames")
MENTIONS: Mapping[str, tuple[str, ...]] = _DATA.mapping("mentions")

# Boilerplate by section. Slots: {p} {d} {date} {year} {amount} {place} {thing} {cite} {statute}.
BOILERPLATE: Mapping[str, tuple[str, ...]] = _DATA.mapping("boilerplate")
# Motions that are none of the postures, in the words the postures use, so that "before the
# court is", "moves", "seeks" or "asks the court" alone predict nothing. Like distractors, a
# document has only a few of them (not a boilerplate section that fills every paragraph).
OTHER_MOTIONS: tuple[str, ...] = _DATA.strings("other_motions")
CITATION_FORMS: tuple[str, ...] = _DATA.strings("citation_forms")
HOLDINGS: tuple[str, ...] = _DATA.strings("holdings")

FIRST_NAMES: tuple[str, ...] = _DATA.strings("first_names")
SURNAMES: tuple[str, ...] = _DATA.strings("surnames")
COMPANY_STEMS: tuple[str, ...] = _DATA.strings("company_stems")
COMPANY_KINDS: tuple[str, ...] = _DATA.strings("company_kinds")
ROLES: Mapping[str, tuple[str, ...]] = _DATA.mapping("roles")
COURTS: tuple[str, ...] = _DATA.strings("courts")
LOWER_COURTS: tuple[str, ...] = _DATA.strings("lower_courts")
ACTS: tuple[str, ...] = _DATA.strings("acts")
CRIMES: tuple[str, ...] = _DATA.strings("crimes")
THINGS: tuple[str, ...] = _DATA.strings("things")
PLACES: tuple[str, ...] = _DATA.strings("places")
STATUTES: tuple[str, ...] = _DATA.strings("statutes")
REPORTERS: tuple[tuple[str, str], ...] = _DATA.pairs("reporters")
CITATION_COURTS: Mapping[str, tuple[str, ...]] = _DATA.mapping("citation_courts")
MONTHS: tuple[str, ...] = _DATA.strings("months")
DOC_TITLES: tuple[str, ...] = _DATA.strings("doc_titles")
HEADINGS: Mapping[str, tuple[str, ...]] = _DATA.mapping("headings")
_NUMERALS = ("I", "II", "III", "IV", "V")

# Shape of the corpus.
_N_POSTURES_WEIGHTS = (55, 35, 10)  # documents with 1, 2, 3 postures
_POSTURE_WEIGHTS = (30, 16, 16, 13, 12, 13)  # "On Appeal" is the most common posture
_WORDS_MIN, _WORDS_MAX = 150, 2500
_LONG_SHARE = 0.32  # documents drawn from the long part of the length range
_LONG_FROM = 1000  # words
_HELD_OUT = 1 / 3  # of every pool, for validation and test
_SLOT = re.compile(r"\{(\w+)\}")


@dataclass(frozen=True)
class Document:
    text: str
    labels: tuple[str, ...]


@dataclass(frozen=True)
class Mention:
    """A cue (``cue=True``: the posture is the document's) or a distractor sentence, in chars."""

    start: int
    end: int
    posture: str
    cue: bool


@dataclass(frozen=True)
class _Inserted:
    text: str
    posture: str
    cue: bool


@dataclass(frozen=True)
class Pools:
    """What one split may draw from; the held-out parts of the lists above."""

    cues: Mapping[str, tuple[str, ...]]
    frames: tuple[str, ...]
    mentions: Mapping[str, tuple[str, ...]]
    motions: tuple[str, ...]
    boilerplate: Mapping[str, tuple[str, ...]]
    surnames: tuple[str, ...]
    companies: tuple[str, ...]


def _hold_out(items: tuple[str, ...], rng: random.Random) -> dict[str, tuple[str, ...]]:
    """Disjoint kept / held-out parts of ``items``, each in the original order."""
    order = list(items)
    rng.shuffle(order)
    held = set(order[: max(1, round(len(items) * _HELD_OUT))])
    return {
        "train": tuple(x for x in items if x not in held),
        "held": tuple(x for x in items if x in held),
    }


def split_pools(seed: int = 7) -> dict[str, Pools]:
    """Pools per split: training's, and the held-out one that validation and test share.

    Validation and test are two samples of one distribution (as thresholds tuned on one must
    carry over to the other), both unseen in training. Each list is cut by the seeded stream.
    """
    rng = random.Random(f"{seed}:pools")
    cues = {p: _hold_out(CUES[p], rng) for p in POSTURES}
    frames = _hold_out(DISTRACTOR_FRAMES, rng)
    mentions = {p: _hold_out(MENTIONS[p], rng) for p in POSTURES}
    motions = _hold_out(OTHER_MOTIONS, rng)
    boilerplate = {s: _hold_out(BOILERPLATE[s], rng) for s in BOILERPLATE}
    surnames = _hold_out(SURNAMES, rng)
    companies = _hold_out(COMPANY_STEMS, rng)
    pools = {
        part: Pools(
            cues={p: cues[p][part] for p in POSTURES},
            frames=frames[part],
            mentions={p: mentions[p][part] for p in POSTURES},
            motions=motions[part],
            boilerplate={s: boilerplate[s][part] for s in BOILERPLATE},
            surnames=surnames[part],
            companies=companies[part],
        )
        for part in ("train", "held")
    }
    return {"train": pools["train"], "validation": pools["held"], "test": pools["held"]}


@dataclass
class _Context:
    """One document's parties and random stream, for filling template slots."""

    rng: random.Random
    pools: Pools
    plaintiff: str
    defendant: str

    def fill(self, template: str, mention: str = "") -> str:
        """The template with its slots filled, as a sentence (first letter upper-case)."""
        text = _SLOT.sub(lambda m: self._value(m.group(1), mention), template)
        return text[:1].upper() + text[1:]

    def _value(self, slot: str, mention: str) -> str:
        rng = self.rng
        if slot in ("p", "d"):
            name = self.plaintiff if slot == "p" else self.defendant
            return rng.choice(ROLES[slot]) + name
        if slot == "mention":
            return mention
        if slot == "date":
            return f"{rng.choice(MONTHS)} {rng.randint(1, 28)}, {rng.randint(1998, 2023)}"
        if slot == "year":
            return str(rng.randint(1995, 2023))
        if slot == "amount":
            return f"${rng.randint(2, 950) * 1000:,}"
        if slot == "cite":
            return _citation(rng, self.pools)
        if slot == "holding":
            return rng.choice(HOLDINGS)
        simple = {
            "court": LOWER_COURTS,
            "act": ACTS,
            "crime": CRIMES,
            "thing": THINGS,
            "place": PLACES,
            "statute": STATUTES,
        }
        return rng.choice(simple[slot])


def _party(rng: random.Random, pools: Pools) -> str:
    if rng.random() < 0.5:
        return f"{rng.choice(FIRST_NAMES)} {rng.choice(pools.surnames)}"
    return f"{rng.choice(pools.companies)} {rng.choice(COMPANY_KINDS)}"


def _citation(rng: random.Random, pools: Pools) -> str:
    """e.g. "Alvarez v. Harlow Logistics LLC, 123 F.3d 456 (9th Cir. 1999)"."""
    reporter, level = rng.choice(REPORTERS)
    court = rng.choice(CITATION_COURTS[level])
    year = rng.randint(1965, 2023)
    where = f"{court} {year}" if court else str(year)
    first, second = rng.choice(pools.surnames), _party(rng, pools)
    return f"{first} v. {second}, {rng.randint(1, 999)} {reporter} {rng.randint(1, 1600)} ({where})"


def _target_words(rng: random.Random, long: bool) -> int:
    """Log-uniform lengths from the long or the short part of the range."""
    low, high = (_LONG_FROM, _WORDS_MAX) if long else (_WORDS_MIN, _LONG_FROM)
    return round(low * (high / low) ** rng.random())


def _paragraph(ctx: _Context, section: str) -> list[str | _Inserted]:
    """A few boilerplate sentences of one section, sometimes with a citation among them."""
    rng, pool = ctx.rng, ctx.pools.boilerplate[section]
    count = min(len(pool), rng.randint(2, 3) if section == "conclusion" else rng.randint(3, 6))
    sentences: list[str | _Inserted] = [ctx.fill(t) for t in rng.sample(pool, count)]
    if section in ("standard", "analysis") and rng.random() < 0.6:
        sentences.insert(rng.randint(1, len(sentences)), ctx.fill(rng.choice(CITATION_FORMS)))
    return sentences


def _sections(ctx: _Context, target_words: int) -> list[tuple[str, list[list[str | _Inserted]]]]:
    """Sections with paragraphs of sentences, about ``target_words`` words in all."""
    n = max(3, round(target_words / 70))
    plan = {"facts": max(1, round(n * 0.25)), "procedure": int(n >= 4), "standard": int(n >= 5)}
    plan["analysis"] = max(0, n - 1 - sum(plan.values()))
    plan["conclusion"] = 1
    return [
        (section, [_paragraph(ctx, section) for _ in range(count)])
        for section, count in plan.items()
        if count
    ]


def _choose_postures(rng: random.Random) -> tuple[str, ...]:
    count = rng.choices((1, 2, 3), weights=_N_POSTURES_WEIGHTS)[0]
    chosen: set[str] = set()
    while len(chosen) < count:
        chosen.add(rng.choices(POSTURES, weights=_POSTURE_WEIGHTS)[0])
    return tuple(p for p in POSTURES if p in chosen)


def _insertions(ctx: _Context, labels: tuple[str, ...]) -> list[_Inserted]:
    """One or two cues per posture, and up to three distractors (mostly of other postures)."""
    rng, pools = ctx.rng, ctx.pools
    out: list[_Inserted] = []
    for posture in labels:
        for template in rng.sample(pools.cues[posture], 2 if rng.random() < 0.25 else 1):
            out.append(_Inserted(ctx.fill(template), posture, True))
    others = [p for p in POSTURES if p not in labels]
    for _ in range(rng.choices((0, 1, 2, 3), weights=(45, 35, 15, 5))[0]):
        posture = rng.choice(others) if rng.random() < 0.85 else rng.choice(POSTURES)
        mention = rng.choice(pools.mentions[posture])
        out.append(_Inserted(ctx.fill(rng.choice(pools.frames), mention), posture, False))
    return out


def _render(
    ctx: _Context, sections: list[tuple[str, list[list[str | _Inserted]]]], title: str
) -> tuple[str, tuple[Mention, ...]]:
    """Join caption, headings and paragraphs; record where each inserted sentence landed."""
    headed = ctx.rng.random() < 0.7
    text = "\n".join(
        x for x in (f"{ctx.plaintiff} v. {ctx.defendant}", ctx.rng.choice(COURTS), title) if x
    )
    mentions: list[Mention] = []
    for number, (section, paragraphs) in enumerate(sections):
        if headed:
            text += f"\n\n{_NUMERALS[number]}. {ctx.rng.choice(HEADINGS[section])}"
        for paragraph in paragraphs:
            text += "\n\n"
            for i, sentence in enumerate(paragraph):
                text += " " if i else ""
                if isinstance(sentence, _Inserted):
                    end = len(text) + len(sentence.text)
                    mentions.append(Mention(len(text), end, sentence.posture, sentence.cue))
                    sentence = sentence.text
                text += sentence
    return text, tuple(mentions)


def compose(
    rng: random.Random, pools: Pools, long: bool = False
) -> tuple[Document, tuple[Mention, ...]]:
    """One document, and the cue and distractor sentences placed in it."""
    plaintiff = _party(rng, pools)
    defendant = _party(rng, pools)
    while defendant == plaintiff:
        defendant = _party(rng, pools)
    ctx = _Context(rng, pools, plaintiff, defendant)
    labels = _choose_postures(rng)
    sections = _sections(ctx, _target_words(rng, long))
    paragraphs = [paragraph for _, paras in sections for paragraph in paras]
    motions = rng.sample(pools.motions, rng.choices((0, 1, 2), weights=(30, 45, 25))[0])
    extra: list[str | _Inserted] = [*_insertions(ctx, labels), *(ctx.fill(m) for m in motions)]
    for inserted in extra:
        paragraph = rng.choice(paragraphs)
        paragraph.insert(rng.randint(0, len(paragraph)), inserted)
    text, mentions = _render(ctx, sections, rng.choice(DOC_TITLES))
    return Document(text, labels), mentions


def generate_annotated(
    seed: int = 7, n_train: int = 600, n_validation: int = 150, n_test: int = 150
) -> dict[str, list[tuple[Document, tuple[Mention, ...]]]]:
    """Like :func:`generate_splits`, with each document's cue and distractor sentences."""
    pools = split_pools(seed)
    sizes = {"train": n_train, "validation": n_validation, "test": n_test}
    out = {}
    for split in SPLITS:
        rng = random.Random(f"{seed}:{split}")
        n = sizes[split]
        # An exact share of long documents per split (so windowing matters in every split).
        long = [i < round(n * _LONG_SHARE) for i in range(n)]
        rng.shuffle(long)
        out[split] = [compose(rng, pools[split], flag) for flag in long]
    return out


def generate_splits(
    seed: int = 7, n_train: int = 600, n_validation: int = 150, n_test: int = 150
) -> dict[str, list[Document]]:
    """Documents per split ("train", "validation", "test"); same seed, same corpus."""
    annotated = generate_annotated(seed, n_train, n_validation, n_test)
    return {split: [doc for doc, _ in docs] for split, docs in annotated.items()}


def _pattern(template: str, mention: str = "") -> str:
    """A template as a regex: slots match within one sentence, the match starts a sentence."""
    parts = _SLOT.split(template)
    out = []
    for i, part in enumerate(parts):
        if i % 2 == 0:
            out.append(re.escape(part))
        else:
            out.append(mention if part == "mention" else _SLOT_PATTERN)
    return r"(?:^|(?<=\. ))" + "".join(out)


_SLOT_PATTERN = r"(?:(?!\. )[^\n])+?"


@cache
def _matchers() -> tuple[tuple[str, re.Pattern[str], str, bool], ...]:
    """(longest literal, pattern, posture, is_cue) for every cue and distractor template."""
    mentions = "|".join(
        re.escape(m) for p in POSTURES for m in sorted(MENTIONS[p], key=len, reverse=True)
    )
    out = []
    for posture in POSTURES:
        for template in CUES[posture]:
            out.append((_literal(template), re.compile(_pattern(template), re.M), posture, True))
    for frame in DISTRACTOR_FRAMES:
        pattern = re.compile(_pattern(frame, f"(?P<mention>{mentions})"), re.M)
        out.append((_literal(frame), pattern, "", False))
    return tuple(out)


def _literal(template: str) -> str:
    return max(_SLOT.split(template)[::2], key=len)


@cache
def _mention_postures() -> dict[str, str]:
    return {m: p for p in POSTURES for m in MENTIONS[p]}


def annotate(text: str) -> tuple[Mention, ...]:
    """The cue and distractor sentences of a generated text, found again from the templates.

    Lets training label windows by the cues they contain, from the text alone (e.g. read back
    from JSON Lines).
    """
    found = []
    for literal, pattern, posture, cue in _matchers():
        if literal not in text:  # cheap filter: most templates are absent from a document
            continue
        for match in pattern.finditer(text):
            which = posture or _mention_postures()[match.group("mention")]
            found.append(Mention(match.start(), match.end(), which, cue))
    return tuple(sorted(found, key=lambda m: (m.start, m.end)))


def write_jsonl(docs: Iterable[Document], path: str | Path) -> None:
    """Write one {"text", "labels"} object per line, UTF-8 (what posture calibration reads)."""
    with Path(path).open("w", encoding="utf-8") as f:
        for doc in docs:
            record = {"text": doc.text, "labels": list(doc.labels)}
            f.write(json.dumps(record, ensure_ascii=False) + "\n")


def read_jsonl(path: str | Path) -> list[Document]:
    """Read documents written by write_jsonl (blank lines are skipped)."""
    docs = []
    with Path(path).open(encoding="utf-8") as f:
        for line in f:
            if line.strip():
                record = json.loads(line)
                docs.append(Document(record["text"], tuple(record["labels"])))
    return docs
