"""Extended grapheme cluster boundaries (Unicode UAX #29) and snapping spans outward to them.

Byte-level BPE tokenizers (RoBERTa, GPT-2) split a Devanagari vowel sign, a combining accent or
the parts of an emoji ZWJ sequence into tokens of their own, so a word-level span can start or
end inside one user-perceived character. :class:`Graphemes` finds every cluster boundary of a
text once (the ``regex`` package's ``\\X``, which implements UAX #29 extended clusters) and then
snaps any number of spans in O(log n) each: a start moves left to the start of its cluster, an
end moves right to the end of its cluster. Spans already on boundaries are unchanged.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from dataclasses import dataclass

import regex

_CLUSTER = regex.compile(r"\X", regex.DOTALL)


@dataclass(frozen=True)
class Graphemes:
    """The cluster boundaries of one text: 0, every cluster end (the last is ``len(text)``).

    ``boundaries`` is empty when every offset is a boundary (ASCII without CR LF): no scan, and
    snapping is the identity.
    """

    length: int
    boundaries: tuple[int, ...] = ()

    @classmethod
    def of(cls, text: str) -> Graphemes:
        if text.isascii() and "\r\n" not in text:  # ASCII: one cluster per character but CR LF
            return cls(len(text))
        return cls(len(text), (0, *(m.end() for m in _CLUSTER.finditer(text))))

    def is_boundary(self, offset: int) -> bool:
        if not self.boundaries:
            return 0 <= offset <= self.length
        i = bisect_left(self.boundaries, offset)
        return i < len(self.boundaries) and self.boundaries[i] == offset

    def snap(self, start: int, end: int) -> tuple[int, int]:
        """The smallest cluster-aligned span containing ``[start, end)``."""
        if not 0 <= start <= end <= self.length:
            raise ValueError(f"span [{start}, {end}) is outside a text of {self.length}")
        if not self.boundaries:
            return start, end
        first = self.boundaries[bisect_right(self.boundaries, start) - 1]
        last = self.boundaries[bisect_left(self.boundaries, end)]
        return first, last


def snap_spans(text: str, spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """``Graphemes.of(text).snap`` for many spans, the boundaries computed once."""
    if not spans:
        return []
    graphemes = Graphemes.of(text)
    return [graphemes.snap(start, end) for start, end in spans]
