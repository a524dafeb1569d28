"""The BIO (IOB2) tag scheme: validation, transition constraints and tags → word spans."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

# Finite on purpose: -inf arithmetic in forward-backward turns into NaN (-inf - -inf).
FORBIDDEN = -1e4


class TagSchemeError(ValueError):
    """The label list is not a valid BIO tag set."""


@dataclass(frozen=True)
class BioScheme:
    """Decoded view of a BIO label list such as ``["O", "B-PER", "I-PER"]``."""

    labels: tuple[str, ...]
    entity_types: tuple[str, ...]
    type_of_tag: NDArray[np.int64]  # entity-type index per tag, -1 for "O"
    is_inside: NDArray[np.bool_]  # True for I-X tags

    @classmethod
    def parse(cls, labels: list[str] | tuple[str, ...]) -> BioScheme:
        """Validate ``labels``; every I-X needs its B-X, and there must be exactly one "O"."""
        if list(labels).count("O") != 1:
            raise TagSchemeError("the tag list must contain the outside tag 'O' exactly once")
        if len(set(labels)) != len(labels):
            raise TagSchemeError(f"duplicate tags in {list(labels)}")
        types: list[str] = []
        type_of_tag, is_inside = [], []
        for tag in labels:
            if tag == "O":
                type_of_tag.append(-1)
                is_inside.append(False)
                continue
            prefix, _, name = tag.partition("-")
            if prefix not in ("B", "I") or not name:
                raise TagSchemeError(
                    f"tag {tag!r} is not BIO: expected 'O', 'B-<type>' or 'I-<type>'"
                )
            if name not in types:
                types.append(name)
            type_of_tag.append(types.index(name))
            is_inside.append(prefix == "I")
        missing = [t for t in labels if t.startswith("I-") and f"B-{t[2:]}" not in labels]
        if missing:
            raise TagSchemeError(f"tags {missing} have no matching B- tag")
        return cls(
            labels=tuple(labels),
            entity_types=tuple(types),
            type_of_tag=np.asarray(type_of_tag, dtype=np.int64),
            is_inside=np.asarray(is_inside, dtype=np.bool_),
        )

    def penalties(self) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """Start and transition penalties that forbid start→I-X, O→I-X, B-X→I-Y and I-X→I-Y."""
        start = np.where(self.is_inside, FORBIDDEN, 0.0)
        continues = self.type_of_tag[:, None] == self.type_of_tag[None, :]
        allowed = ~self.is_inside[None, :] | (continues & (self.type_of_tag[:, None] >= 0))
        return start, np.where(allowed, 0.0, FORBIDDEN)

    def is_valid(self, tags: NDArray[np.int64]) -> bool:
        """Whether a tag-id sequence respects the BIO constraints."""
        if len(tags) == 0:
            return True
        if self.is_inside[tags[0]]:
            return False
        _, transition = self.penalties()
        return bool((transition[tags[:-1], tags[1:]] == 0.0).all())

    def spans(self, tags: NDArray[np.int64]) -> list[tuple[int, int, str]]:
        """Entities as (first word, last word, type); a stray I-X opens a new entity."""
        kind = self.type_of_tag[tags]
        previous = np.concatenate(([-1], kind[:-1]))
        continuing = self.is_inside[tags] & (kind == previous) & (kind >= 0)
        begins = (kind >= 0) & ~continuing
        following = np.concatenate((continuing[1:], [False]))
        ends = (kind >= 0) & ~following
        first_words = np.flatnonzero(begins)
        last_words = np.flatnonzero(ends)
        return [
            (int(a), int(b), self.entity_types[kind[a]])
            for a, b in zip(first_words, last_words, strict=True)
        ]
