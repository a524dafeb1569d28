"""Grapheme cluster snapping: hand-checked clusters, and agreement with a second definition."""

from __future__ import annotations

import random
from itertools import pairwise

import pytest
import regex

from service.text.graphemes import Graphemes, snap_spans


@pytest.mark.parametrize(
    ("text", "clusters"),
    [
        ("डोसा", ["डो", "सा"]),
        ("क्षमा", ["क्ष", "मा"]),
        ("e\u0301t\u00e9", ["e\u0301", "t", "\u00e9"]),
        ("a👩‍👩‍👧b", ["a", "👩‍👩‍👧", "b"]),
        ("👍🏽!", ["👍🏽", "!"]),
        ("🇮🇳🇩🇪", ["🇮🇳", "🇩🇪"]),
        ("x\r\ny", ["x", "\r\n", "y"]),
        ("plain", list("plain")),
        ("", []),
    ],
)
def test_boundaries_are_the_extended_clusters(text: str, clusters: list[str]) -> None:
    g = Graphemes.of(text)
    bounds = g.boundaries or tuple(range(g.length + 1))
    assert [text[a:b] for a, b in pairwise(bounds)] == clusters


def test_snap_moves_start_left_and_end_right_only_when_inside_a_cluster() -> None:
    text = "मसाला डोसा"
    g = Graphemes.of(text)
    dosa = text.index("डोसा")
    assert g.snap(dosa, dosa + 3) == (dosa, dosa + 4)  # ends on स: the vowel sign joins
    assert g.snap(dosa + 1, dosa + 4) == (dosa, dosa + 4)  # starts on the vowel sign ो
    assert g.snap(dosa, dosa + 4) == (dosa, dosa + 4)
    assert g.snap(0, 0) == (0, 0)
    with pytest.raises(ValueError, match="outside"):
        g.snap(0, len(text) + 1)


def test_snapping_matches_a_per_span_scan_on_random_text() -> None:
    rng = random.Random(3)
    alphabet = ["a", " ", "क", "\u094d", "ो", "\u0301", "👩", "\u200d", "🏽", "🇮", "\r", "\n"]
    for _ in range(300):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 30)))
        spans = [tuple(sorted(rng.sample(range(len(text) + 1), 2))) for _ in range(5) if text]
        cuts = {0, *(m.end() for m in regex.finditer(r"\X", text, flags=regex.DOTALL))}
        expected = [
            (max(c for c in cuts if c <= a), min(c for c in cuts if c >= b)) for a, b in spans
        ]
        assert snap_spans(text, spans) == expected  # type: ignore[arg-type]
