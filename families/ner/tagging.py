"""Tag schemes (BIO/IOB2, BIOES/IOBES, BILOU): validation, decoding constraints, tags → spans.

BILOU is BIOES renamed (L = E, U = S). Every tag has a *role* (O, B, I, E, S) and an entity type;
constraints and span assembly work on roles, so the three schemes share one definition.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import NDArray

# Finite on purpose: -inf arithmetic in forward-backward turns into NaN (-inf - -inf).
FORBIDDEN = -1e4

SchemeName = Literal["BIO", "BIOES", "BILOU"]
OUT, BEGIN, INSIDE, END, SINGLE = range(5)  # tag roles
_PREFIXES: dict[str, dict[str, int]] = {
    "BIO": {"B": BEGIN, "I": INSIDE},
    "BIOES": {"B": BEGIN, "I": INSIDE, "E": END, "S": SINGLE},
    "BILOU": {"B": BEGIN, "I": INSIDE, "L": END, "U": SINGLE},
}
FloatArray = NDArray[np.float64]


class TagSchemeError(ValueError):
    """The label list is not a valid BIO / BIOES / BILOU tag set."""


@dataclass(frozen=True)
class Penalties:
    """Finite scores added to a CRF's start, end and transition scores to forbid invalid moves."""

    start: FloatArray
    end: FloatArray
    transitions: FloatArray


def detect_scheme(labels: list[str] | tuple[str, ...]) -> SchemeName:
    """The scheme whose prefixes the labels use; refuse anything else, naming the labels."""
    if list(labels).count("O") != 1:
        raise TagSchemeError("the tag list must contain the outside tag 'O' exactly once")
    allowed = set().union(*(p.keys() for p in _PREFIXES.values()))
    bad = [t for t in labels if t != "O" and not (t[:1] in allowed and t[1:2] == "-" and t[2:])]
    if bad:
        raise TagSchemeError(
            f"tags {bad} are not BIO/BIOES/BILOU: expected 'O' or '<B|I|E|S|L|U>-<type>'"
        )
    prefixes = {t[0] for t in labels if t != "O"}
    for name in ("BIO", "BIOES", "BILOU"):
        if prefixes <= set(_PREFIXES[name]):
            return name
    raise TagSchemeError(f"tags mix BIOES and BILOU prefixes: {sorted(prefixes)}")


@dataclass(frozen=True)
class TagScheme:
    """Decoded view of a label list such as ``["O", "B-PER", "I-PER"]``."""

    name: SchemeName
    labels: tuple[str, ...]
    entity_types: tuple[str, ...]
    type_of_tag: NDArray[np.int64]  # entity-type index per tag, -1 for "O"
    role: NDArray[np.int64]  # OUT, BEGIN, INSIDE, END or SINGLE per tag

    @classmethod
    def parse(
        cls, labels: list[str] | tuple[str, ...], name: SchemeName | None = None
    ) -> TagScheme:
        """Validate ``labels`` (detecting the scheme unless ``name`` is given)."""
        detected = detect_scheme(labels)
        if len(set(labels)) != len(labels):
            raise TagSchemeError(f"duplicate tags in {list(labels)}")
        name = name or detected
        if detected != name:
            raise TagSchemeError(f"the tags are {detected}, not {name}: {list(labels)}")
        prefixes = _PREFIXES[name]
        types: list[str] = []
        type_of_tag, roles = [], []
        for tag in labels:
            if tag == "O":
                type_of_tag.append(-1)
                roles.append(OUT)
                continue
            if tag[2:] not in types:
                types.append(tag[2:])
            type_of_tag.append(types.index(tag[2:]))
            roles.append(prefixes[tag[0]])
        scheme = cls(
            name,
            tuple(labels),
            tuple(types),
            np.asarray(type_of_tag, dtype=np.int64),
            np.asarray(roles, dtype=np.int64),
        )
        scheme._check_complete()
        return scheme

    def _check_complete(self) -> None:
        """Inside tags need their begin tag; with end tags, B-X needs E-X to ever close."""
        have = set(zip(self.role.tolist(), self.type_of_tag.tolist(), strict=True))
        missing = []
        for role, kind in have:
            needs = (
                [BEGIN]
                if role in (INSIDE, END)
                else [END]
                if role == BEGIN and self.name != "BIO"
                else []
            )
            missing += [
                f"{self._prefix(n)}-{self.entity_types[kind]}"
                for n in needs
                if (n, kind) not in have
            ]
        if missing:
            raise TagSchemeError(f"{self.name} tags {sorted(set(missing))} are missing")

    def _prefix(self, role: int) -> str:
        return next(p for p, r in _PREFIXES[self.name].items() if r == role)

    def penalties(self) -> Penalties:
        """Forbid start→I/E, a continuation (I/E) after anything but B/I of its type, and for
        schemes with end tags also B/I followed by anything but I/E of its type, or at the end."""
        role, kind = self.role, self.type_of_tag
        continues = np.isin(role, (INSIDE, END))
        opens = np.isin(role, (BEGIN, INSIDE))
        same = (kind[:, None] == kind[None, :]) & (kind[:, None] >= 0)
        allowed = ~continues[None, :] | (opens[:, None] & same)
        has_ends = self.name != "BIO"
        if has_ends:
            allowed &= ~opens[:, None] | (continues[None, :] & same)
        start = np.where(continues, FORBIDDEN, 0.0)
        end = np.where(opens & has_ends, FORBIDDEN, 0.0)
        return Penalties(start, end, np.where(allowed, 0.0, FORBIDDEN))

    def is_valid(self, tags: NDArray[np.int64]) -> bool:
        """Whether a tag-id sequence respects the scheme's constraints."""
        if len(tags) == 0:
            return True
        p = self.penalties()
        moves = p.transitions[tags[:-1], tags[1:]]
        return bool(p.start[tags[0]] == 0.0 and p.end[tags[-1]] == 0.0 and (moves == 0.0).all())

    def spans(self, tags: NDArray[np.int64]) -> list[tuple[int, int, str]]:
        """Entities as (first word, last word, type); a stray I/E opens a new entity."""
        kind = self.type_of_tag[tags]
        role = self.role[tags]
        previous_kind = np.concatenate(([-1], kind[:-1]))
        previous_opens = np.concatenate(([False], np.isin(role[:-1], (BEGIN, INSIDE))))
        continuing = (
            np.isin(role, (INSIDE, END)) & (kind == previous_kind) & (kind >= 0) & previous_opens
        )
        begins = (kind >= 0) & ~continuing
        following = np.concatenate((continuing[1:], [False]))
        ends = (kind >= 0) & ~following
        return [
            (int(a), int(b), self.entity_types[kind[a]])
            for a, b in zip(np.flatnonzero(begins), np.flatnonzero(ends), strict=True)
        ]
