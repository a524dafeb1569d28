"""Per-request entity options, as pure functions: label/score filters and pre-split words.

Filters. ``labels`` is an allow-list of entity types; ``min_score`` is one threshold for every
type or a ``{type: threshold}`` map (types left out of the map keep every entity). An entity is
kept when its type is allowed and ``score >= threshold``. Unknown type names are refused, naming
the field and the model's types, so a typo never silently filters everything out.

Pre-split words. ``words`` (a list of strings per text) are joined with ONE space between
consecutive words, nothing before the first or after the last: ``["Tushar", "se", "2"]`` becomes
``"Tushar se 2"``. A word must be non-empty and hold no whitespace (its boundaries would be
ambiguous after joining). The model reads the joined text; an entity then carries, besides its
character offsets in that text, ``word_start`` (index of its first word) and ``word_end`` (index
after its last word, so ``words[word_start:word_end]`` are its words).
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Collection, Mapping
from dataclasses import dataclass


class OptionError(ValueError):
    """A request option the model cannot honour; ``field`` names it for the 422 body."""

    def __init__(self, message: str, field: str) -> None:
        super().__init__(message)
        self.field = field


def entity_types(tags: Collection[str]) -> list[str]:
    """Entity types of a tag list (``B-FOOD`` → ``FOOD``), in order of first appearance."""
    types: list[str] = []
    for tag in tags:
        if tag != "O" and tag[2:] not in types:
            types.append(tag[2:])
    return types


@dataclass(frozen=True)
class EntityFilter:
    labels: frozenset[str] | None = None
    default_min: float = 0.0
    per_label_min: Mapping[str, float] | None = None

    @classmethod
    def build(
        cls,
        labels: list[str] | None,
        min_score: float | Mapping[str, float] | None,
        known: Collection[str],
    ) -> EntityFilter:
        """Validate the options against the model's entity types ``known``."""
        if labels is not None:
            _check_known(labels, known, "labels")
        if isinstance(min_score, Mapping):
            _check_known(list(min_score), known, "min_score")
            return cls(_frozen(labels), 0.0, dict(min_score))
        return cls(_frozen(labels), float(min_score or 0.0))

    def keep(self, label: str, score: float) -> bool:
        if self.labels is not None and label not in self.labels:
            return False
        threshold = self.default_min
        if self.per_label_min is not None:
            threshold = self.per_label_min.get(label, 0.0)
        return score >= threshold


def _frozen(labels: list[str] | None) -> frozenset[str] | None:
    return None if labels is None else frozenset(labels)


def _check_known(names: list[str], known: Collection[str], field: str) -> None:
    unknown = sorted(set(names) - set(known))
    if unknown:
        raise OptionError(
            f"{field} names entity types {unknown} this model does not have; "
            f"it has {sorted(known)}",
            field,
        )


@dataclass(frozen=True)
class JoinedWords:
    """A text built from words, and where each word is in it."""

    text: str
    starts: tuple[int, ...]
    ends: tuple[int, ...]

    def word_range(self, start: int, end: int) -> tuple[int, int]:
        """``(word_start, word_end)`` of the words a character span ``[start, end)`` touches."""
        first = max(bisect_right(self.starts, start) - 1, 0)
        after = max(bisect_right(self.starts, max(end - 1, start)), first + 1)
        return first, after


def join_words(words: list[str], field: str = "words") -> JoinedWords:
    """Join ``words`` with single spaces (module docstring), refusing ambiguous words."""
    starts, ends, cursor = [], [], 0
    for i, word in enumerate(words):
        if not word or any(c.isspace() for c in word):
            raise OptionError(
                f"{field}[{i}] must be a non-empty word without whitespace, got {word!r}",
                f"{field}[{i}]",
            )
        starts.append(cursor)
        ends.append(cursor + len(word))
        cursor += len(word) + 1
    return JoinedWords(" ".join(words), tuple(starts), tuple(ends))
