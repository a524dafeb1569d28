"""Fast-tokenizer wrapper that keeps character offsets and word ids for every token.

Special tokens are added per window rather than per text, so one long text can be cut into several
model-sized windows that each look like a normal input (``[CLS] … [SEP]``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from tokenizers import Tokenizer

IntArray = NDArray[np.int64]


@dataclass(frozen=True)
class EncodedText:
    """One text's content tokens (no special tokens)."""

    ids: IntArray  # [n]
    offsets: IntArray  # [n, 2] character offsets into the original text
    word_ids: IntArray  # [n] word index per token; words are contiguous runs of tokens

    def __len__(self) -> int:
        return int(self.ids.shape[0])


@dataclass(frozen=True)
class Words:
    """Word-level view of an encoded text: where each word starts in tokens and characters."""

    first_token: IntArray  # [w] index of the word's first sub-token
    char_start: IntArray  # [w]
    char_end: IntArray  # [w] end of the word's last sub-token

    def __len__(self) -> int:
        return int(self.first_token.shape[0])


class TextTokenizer:
    """Loads ``tokenizer.json`` and resets any truncation/padding baked into the file."""

    def __init__(self, path: Path) -> None:
        self._tokenizer = Tokenizer.from_file(str(path))
        # Files saved by transformers may carry truncation/padding (e.g. 128): windows handle
        # length here, so both must be off or long texts would be silently cut.
        self._tokenizer.no_truncation()
        self._tokenizer.no_padding()
        self.prefix_ids, self.suffix_ids = self._special_tokens()

    def _special_tokens(self) -> tuple[list[int], list[int]]:
        """Find the ids the post-processor puts around a single sequence (e.g. [CLS] / [SEP])."""
        probe = self._tokenizer.encode("a", add_special_tokens=True)
        content = [i for i, special in enumerate(probe.special_tokens_mask) if not special]
        if not content:
            return probe.ids, []
        return probe.ids[: content[0]], probe.ids[content[-1] + 1 :]

    @property
    def num_special_tokens(self) -> int:
        return len(self.prefix_ids) + len(self.suffix_ids)

    def encode_batch(self, texts: list[str]) -> list[EncodedText]:
        """Tokenize texts in one call to the Rust tokenizer (parallel inside the library)."""
        encodings = self._tokenizer.encode_batch(texts, add_special_tokens=False)
        return [
            EncodedText(
                ids=np.asarray(e.ids, dtype=np.int64),
                offsets=np.asarray(e.offsets, dtype=np.int64).reshape(-1, 2),
                word_ids=np.asarray([-1 if w is None else w for w in e.word_ids], dtype=np.int64),
            )
            for e in encodings
        ]


def first_subtokens(word_ids: IntArray) -> IntArray:
    """Index of each word's first sub-token (``word_ids``: -1 for tokens outside any word).

    Where a word's label is read (the transformers pipeline's ``first`` strategy), and where
    training code puts it; the one definition the service, the export gates and training share.
    """
    if len(word_ids) == 0:
        return np.zeros(0, dtype=np.int64)
    changes = np.flatnonzero(word_ids[1:] != word_ids[:-1]) + 1
    first = np.concatenate(([0], changes)).astype(np.int64)
    starts: IntArray = first[word_ids[first] >= 0]
    return starts


def words_of(encoded: EncodedText) -> Words:
    """Group sub-tokens into words; a word spans from its first to its last sub-token."""
    if len(encoded) == 0:
        empty = np.zeros(0, dtype=np.int64)
        return Words(empty, empty, empty)
    changes = np.flatnonzero(encoded.word_ids[1:] != encoded.word_ids[:-1]) + 1
    runs = np.concatenate(([0], changes))
    char_end = np.maximum.reduceat(encoded.offsets[:, 1], runs)[encoded.word_ids[runs] >= 0]
    first = first_subtokens(encoded.word_ids)
    return Words(first_token=first, char_start=encoded.offsets[first, 0], char_end=char_end)


def first_whole_words(encoded: EncodedText, limit: int) -> EncodedText:
    """The tokens before ``limit``, less a last word cut by it (the ``truncate`` input policy)."""
    cut = limit
    if 0 < limit < len(encoded) and encoded.word_ids[limit] == encoded.word_ids[limit - 1]:
        same = np.flatnonzero(encoded.word_ids[:limit] != encoded.word_ids[limit - 1])
        cut = int(same[-1]) + 1 if len(same) else limit  # one word longer than a window: keep it
    return EncodedText(encoded.ids[:cut], encoded.offsets[:cut], encoded.word_ids[:cut])


def extend_to_word_end(text: str, end: int, limit: int) -> int:
    """Move ``end`` over characters the tokenizer normalised away but that belong to the word.

    Uncased BERT tokenizers strip accents: combining marks (Devanagari vowel signs, a combining
    acute) vanish from the tokens, so the last token's offset can stop before the word really ends.
    Such characters are kept, up to the next whitespace or the next token (``limit``).
    """
    while end < limit and not text[end].isspace():
        end += 1
    return end
