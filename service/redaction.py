"""Redaction of entity spans: replaced by position, right to left, never by string search.

Pure functions, no I/O; the HTTP route, the batch scorer and tests share them.

Pipeline for one text:
1. every span is snapped outward to extended grapheme cluster boundaries
   (:mod:`service.text.graphemes`), so no mode can leave half a user-perceived character;
2. overlapping spans are merged (:func:`merge_overlaps`): spans that share at least one character,
   transitively, become one span covering their union, with the label and score of the member of
   highest score (ties: the longer member, then the earlier one). Spans that only touch
   (``a.end == b.start``) stay apart; empty spans are dropped;
3. each merged span's replacement is chosen left to right (placeholder numbers follow the order of
   first occurrence), then the text is rebuilt from the untouched pieces and the replacements.
   Offsets are Python string indices (code points), the same as the entity offsets of the API.

Modes: ``mask`` replaces every code point with ``mask_char`` (the length is kept); ``placeholder``
writes ``<LABEL_n>``, one ``n`` per distinct entity value per label, shared by every text of a
request (:class:`Placeholders`); ``hash`` writes the first ``hash_chars`` hex digits of
HMAC-SHA256(key, UTF-8 value) and is refused without a key (:class:`HashKeyMissing`); ``remove``
deletes the span.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

from service.text.graphemes import Graphemes

Mode = Literal["mask", "placeholder", "hash", "remove"]
MODES: tuple[Mode, ...] = ("mask", "placeholder", "hash", "remove")


class HashKeyMissing(ValueError):
    """``mode="hash"`` was asked for and no HMAC key is configured."""


@dataclass(frozen=True)
class Span:
    """An entity span in the original text: ``text[start:end]``."""

    label: str
    start: int
    end: int
    score: float = 1.0


@dataclass(frozen=True)
class RedactedSpan:
    """A merged span: where it was (``start``/``end``), where its replacement is now."""

    label: str
    start: int
    end: int
    score: float
    redacted_start: int
    redacted_end: int
    replacement: str


@dataclass(frozen=True)
class Redaction:
    text: str
    spans: list[RedactedSpan]


@dataclass
class Placeholders:
    """``<LABEL_n>`` numbering shared by the texts of one request (first occurrence first)."""

    numbers: dict[tuple[str, str], int] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)

    def name(self, label: str, value: str) -> str:
        key = (label, value)
        if key not in self.numbers:
            self.counts[label] = self.counts.get(label, 0) + 1
            self.numbers[key] = self.counts[label]
        return f"<{label}_{self.numbers[key]}>"

    def mapping(self) -> dict[str, str]:
        """Placeholder → original value, for callers who asked for it (``return_mapping``)."""
        return {f"<{label}_{n}>": value for (label, value), n in self.numbers.items()}


@dataclass(frozen=True)
class Redactor:
    """One mode and its parameters; :meth:`redact` is called once per text."""

    mode: Mode
    key: bytes | None = None
    mask_char: str = "*"
    hash_chars: int = 16

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {list(MODES)}, got {self.mode!r}")
        if self.mode == "hash" and not self.key:
            raise HashKeyMissing(
                "mode 'hash' needs an HMAC key: set INFER_REDACT_HASH_KEY or "
                "INFER_REDACT_HASH_KEY_FILE"
            )
        if len(self.mask_char) != 1:
            raise ValueError("mask_char must be exactly one character")
        if not 8 <= self.hash_chars <= 64:
            raise ValueError("hash_chars must be between 8 and 64")

    def replacement(self, label: str, value: str, placeholders: Placeholders) -> str:
        if self.mode == "mask":
            return self.mask_char * len(value)
        if self.mode == "placeholder":
            return placeholders.name(label, value)
        if self.mode == "hash":
            assert self.key is not None
            digest = hmac.new(self.key, value.encode("utf-8"), hashlib.sha256).hexdigest()
            return digest[: self.hash_chars]
        return ""

    def redact(
        self, text: str, spans: Sequence[Span], placeholders: Placeholders | None = None
    ) -> Redaction:
        """Redact one text; pass the same ``placeholders`` for every text of a request."""
        placeholders = placeholders if placeholders is not None else Placeholders()
        merged = merge_overlaps(snap(text, spans))
        replacements = [
            self.replacement(s.label, text[s.start : s.end], placeholders) for s in merged
        ]
        return apply(text, merged, replacements)


def snap(text: str, spans: Sequence[Span]) -> list[Span]:
    """Every span widened to grapheme cluster boundaries (boundaries computed once)."""
    if not spans:
        return []
    graphemes = Graphemes.of(text)
    out = []
    for s in spans:
        start, end = graphemes.snap(s.start, s.end)
        out.append(Span(s.label, start, end, s.score))
    return out


def merge_overlaps(spans: Sequence[Span]) -> list[Span]:
    """Disjoint spans sorted by start: overlapping groups become their union (module docstring)."""
    ordered = sorted((s for s in spans if s.end > s.start), key=lambda s: (s.start, -s.end))
    groups: list[list[Span]] = []
    reach = -1
    for s in ordered:
        if groups and s.start < reach:
            groups[-1].append(s)
            reach = max(reach, s.end)
        else:
            groups.append([s])
            reach = s.end
    merged = []
    for group in groups:
        best = max(group, key=lambda s: (s.score, s.end - s.start, -s.start))
        end = max(s.end for s in group)
        merged.append(Span(best.label, group[0].start, end, best.score))
    return merged


def apply(text: str, spans: Sequence[Span], replacements: Sequence[str]) -> Redaction:
    """Replace disjoint sorted ``spans`` by position, from the right so offsets stay valid."""
    pieces: list[str] = []
    cursor = len(text)
    for s, new in zip(reversed(spans), reversed(replacements), strict=True):
        if s.end > cursor or s.start < 0:
            raise ValueError("spans must be disjoint, sorted and inside the text")
        pieces.append(text[s.end : cursor])
        pieces.append(new)
        cursor = s.start
    pieces.append(text[:cursor])
    redacted = "".join(reversed(pieces))
    out: list[RedactedSpan] = []
    shift = 0  # length change of the replacements left of the current span
    for s, new in zip(spans, replacements, strict=True):
        begin = s.start + shift
        out.append(RedactedSpan(s.label, s.start, s.end, s.score, begin, begin + len(new), new))
        shift += len(new) - (s.end - s.start)
    return Redaction(redacted, out)
