"""Redaction engine: hand-checked cases, then 600 generated multilingual texts against
presidio-anonymizer's AnonymizerEngine given the same (merged) spans and equivalent operators.

Presidio's ``hash`` operator is salted SHA-256 (``sha256(text + salt)``), not a keyed HMAC, so the
hash mode is compared through presidio's ``custom`` operator computing HMAC-SHA256 independently:
that checks the engine's mechanics (what is replaced, in which order, at which position), not the
digest formula, which the hand-checked case below pins with ``hmac`` directly.
"""

from __future__ import annotations

import hashlib
import hmac
import random

import pytest
from presidio_anonymizer import AnonymizerEngine
from presidio_anonymizer.entities import OperatorConfig, RecognizerResult

from service.redaction import (
    HashKeyMissing,
    Placeholders,
    Redactor,
    Span,
    merge_overlaps,
)
from service.text.graphemes import Graphemes

KEY = b"test-key-0123456789abcdef"


def test_placeholder_numbers_each_distinct_value_per_label() -> None:
    text = "Ana met Bo, then Ana called Bo's sister Ana."
    spans = [Span("PER", 0, 3), Span("PER", 8, 10), Span("PER", 17, 20), Span("PER", 28, 30)]
    spans.append(Span("LOC", 40, 43))  # the same value under another label: its own numbering
    out = Redactor("placeholder").redact(text, spans)
    assert out.text == "<PER_1> met <PER_2>, then <PER_1> called <PER_2>'s sister <LOC_1>."
    assert [(s.redacted_start, s.redacted_end) for s in out.spans][:2] == [(0, 7), (12, 19)]
    assert [out.text[s.redacted_start : s.redacted_end] for s in out.spans] == [
        s.replacement for s in out.spans
    ]


def test_placeholders_are_shared_across_texts_and_mapping_is_returned() -> None:
    numbering = Placeholders()
    redactor = Redactor("placeholder")
    first = redactor.redact("Ravi and Sita", [Span("PER", 0, 4), Span("PER", 9, 13)], numbering)
    second = redactor.redact("Sita left", [Span("PER", 0, 4)], numbering)
    assert (first.text, second.text) == ("<PER_1> and <PER_2>", "<PER_2> left")
    assert numbering.mapping() == {"<PER_1>": "Ravi", "<PER_2>": "Sita"}


def test_replacement_is_by_position_not_by_string_search() -> None:
    text = "Kim said kimchi, Kim."  # str.replace("Kim") would also hit a non-entity copy
    out = Redactor("mask").redact(text, [Span("PER", 0, 3)])
    assert out.text == "*** said kimchi, Kim."
    assert len(out.text) == len(text)


def test_hash_is_keyed_hmac_truncated_and_refused_without_key() -> None:
    out = Redactor("hash", key=KEY, hash_chars=12).redact("to Ana.", [Span("PER", 3, 6)])
    digest = hmac.new(KEY, b"Ana", hashlib.sha256).hexdigest()[:12]
    assert out.text == f"to {digest}."
    assert Redactor("hash", key=b"other").replacement("PER", "Ana", Placeholders()) != digest[:16]
    with pytest.raises(HashKeyMissing, match="INFER_REDACT_HASH_KEY"):
        Redactor("hash")


def test_remove_reports_empty_positions() -> None:
    out = Redactor("remove").redact("a Bob b Cy c", [Span("PER", 2, 5), Span("PER", 8, 10)])
    assert out.text == "a  b  c"
    assert [(s.redacted_start, s.redacted_end) for s in out.spans] == [(2, 2), (5, 5)]


def test_merge_rule_union_and_best_label() -> None:
    spans = [
        Span("ORG", 0, 10, 0.4),
        Span("PER", 5, 12, 0.9),  # overlaps ORG: the group takes PER (higher score)
        Span("LOC", 11, 15, 0.2),  # overlaps PER transitively: same group
        Span("LOC", 15, 18, 0.5),  # only touches: its own span
        Span("X", 20, 20, 1.0),  # empty: dropped
    ]
    assert merge_overlaps(spans) == [Span("PER", 0, 15, 0.9), Span("LOC", 15, 18, 0.5)]
    tie = [Span("A", 0, 3, 0.5), Span("B", 2, 8, 0.5)]
    assert merge_overlaps(tie) == [Span("B", 0, 8, 0.5)]  # equal scores: the longer member


def test_spans_are_snapped_to_grapheme_clusters_before_replacing() -> None:
    text = "मसाला डोसा खाओ"  # a span ending on स leaves the vowel sign ा outside unless snapped
    cut = text.index("डोसा")
    out = Redactor("mask").redact(text, [Span("FOOD", cut, cut + 3)])
    assert out.text == "मसाला **** खाओ"
    assert (out.spans[0].start, out.spans[0].end) == (cut, cut + 4)


# ---- generated texts against presidio ------------------------------------------------------

NAMES = {
    "PER": ["Ανδρέας", "José", "Zoë", "राहुल", "प्रिया", "Владимир", "Nguyễn", "李小龍", "Tushar"],
    "LOC": ["München", "दिल्ली", "Kraków", "São Paulo", "Zürich", "मुंबई"],
    "FOOD": ["डोसा", "crème brûlée", "pão de queijo", "पनीर टिक्का", "smørrebrød"],
}
FILLER = [
    "and",
    "then",
    "se",
    "ne",
    "misal",
    "ok",
    "khana",
    "und",
    "y",
    "=",
    "👍🏽",
    "👩‍👩‍👧",
    "…",
    "\n",
]
COMBINING = ["e\u0301", "n\u0303", "क\u094d\u0937", "a\u0308\u0301"]


def generate(rng: random.Random) -> tuple[str, list[Span]]:
    """A text of filler and entity values (repeats likely) and candidate spans that overlap,
    nest, touch and start or end inside grapheme clusters."""
    parts: list[str] = []
    spans: list[Span] = []
    cursor = 0
    for _ in range(rng.randint(1, 12)):
        if rng.random() < 0.45:
            label = rng.choice(list(NAMES))
            value = rng.choice(NAMES[label])
            spans.append(Span(label, cursor, cursor + len(value), round(rng.random(), 3)))
            piece = value
        else:
            piece = rng.choice(FILLER + COMBINING)
        parts.append(piece)
        cursor += len(piece)
        sep = rng.choice([" ", " ", ", ", " 🙂 ", ""])
        parts.append(sep)
        cursor += len(sep)
    text = "".join(parts)
    for s in list(spans):
        roll = rng.random()
        if roll < 0.2:  # an overlapping candidate of another label reaching further right
            spans.append(Span(rng.choice(list(NAMES)), s.start + 1, min(len(text), s.end + 3), 0.5))
        elif roll < 0.3:  # a nested candidate of the same label
            spans.append(Span(s.label, s.start + 1, max(s.start + 1, s.end - 1), 0.1))
        elif roll < 0.4:  # a cut inside the last cluster (e.g. without a vowel sign)
            spans.append(Span(s.label, s.start, s.end - 1, s.score + 0.01))
    rng.shuffle(spans)
    return text, spans


def presidio_redact(text: str, spans: list[Span], operators: dict[str, OperatorConfig]) -> object:
    results = [RecognizerResult(s.label, s.start, s.end, s.score) for s in spans]
    return AnonymizerEngine().anonymize(text, results, operators, merge_entities_with_spaces=False)


def reference_operators(mode: str, spans: list[Span], text: str) -> dict[str, OperatorConfig]:
    """Presidio operators equivalent to each mode, built without the code under test."""
    if mode == "mask":
        return {
            "DEFAULT": OperatorConfig(
                "mask", {"masking_char": "*", "chars_to_mask": 10**6, "from_end": False}
            )
        }
    if mode == "remove":
        return {"DEFAULT": OperatorConfig("redact", {})}
    if mode == "hash":

        def keyed(value: str) -> str:
            return hmac.new(KEY, value.encode(), hashlib.sha256).hexdigest()[:16]

        return {"DEFAULT": OperatorConfig("custom", {"lambda": keyed})}
    numbers: dict[str, dict[str, int]] = {}  # placeholder: first occurrence, left to right
    for s in sorted(spans, key=lambda s: s.start):
        seen = numbers.setdefault(s.label, {})
        seen.setdefault(text[s.start : s.end], len(seen) + 1)
    return {
        label: OperatorConfig(
            "custom", {"lambda": lambda v, label=label: f"<{label}_{numbers[label][v]}>"}
        )
        for label in numbers
    }


@pytest.mark.parametrize("mode", ["mask", "placeholder", "hash", "remove"])
def test_generated_texts_equal_presidio_and_leak_nothing(mode: str) -> None:
    rng = random.Random(26)
    redactor = Redactor(mode, key=KEY)  # type: ignore[arg-type]
    snapped = overlapping = 0
    for _ in range(600):
        text, candidates = generate(rng)
        out = redactor.redact(text, candidates)
        final = [Span(s.label, s.start, s.end, s.score) for s in out.spans]
        expected = presidio_redact(text, final, reference_operators(mode, final, text))
        assert out.text == expected.text, (text, candidates)  # type: ignore[attr-defined]
        theirs = sorted((i.start, i.end, i.entity_type) for i in expected.items)  # type: ignore[attr-defined]
        assert sorted((s.redacted_start, s.redacted_end, s.label) for s in out.spans) == theirs
        graphemes = Graphemes.of(text)
        for s in out.spans:
            assert graphemes.is_boundary(s.start) and graphemes.is_boundary(s.end)
        for c in candidates:  # every candidate lies inside some redacted span
            assert any(s.start <= c.start and c.end <= s.end for s in out.spans if c.end > c.start)
        for s in out.spans:  # no entity text of the answered spans survives
            assert text[s.start : s.end] not in out.text, (text, s)
        snapped += any(not graphemes.is_boundary(c.end) for c in candidates)
        overlapping += len(out.spans) < len({(c.start, c.end) for c in candidates})
    assert snapped > 50 and overlapping > 100  # the cases the generator is for did occur


@pytest.mark.parametrize("mode", ["mask", "placeholder"])
def test_same_label_overlaps_merge_as_presidio_resolves_them(mode: str) -> None:
    """Presidio's default conflict resolution (union of same-type intersections, contained
    results dropped) agrees with our merge rule on same-label candidates: feed it the raw ones."""
    rng = random.Random(7)
    for _ in range(300):
        text, candidates = generate(rng)
        graphemes = Graphemes.of(text)
        raw = [
            Span("PER", *graphemes.snap(c.start, c.end), c.score)
            for c in candidates
            if c.end > c.start
        ]
        out = Redactor(mode).redact(text, raw)  # type: ignore[arg-type]
        final = [Span(s.label, s.start, s.end, s.score) for s in out.spans]
        expected = presidio_redact(text, raw, reference_operators(mode, final, text))
        assert out.text == expected.text  # type: ignore[attr-defined]
