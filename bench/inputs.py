"""Benchmark inputs with exact token counts: utterances (8-40 tokens) and long documents.

Texts are random lowercase vocabulary words that the WordPiece tokenizer keeps as one token each,
so a text of n words is exactly n content tokens (checked after generation). Every contender gets
the same texts.
"""

from __future__ import annotations

import random
from pathlib import Path

from tokenizers import Tokenizer

SPECIAL_TOKENS = 2  # [CLS] ... [SEP]


def single_token_words(tokenizer_file: Path) -> list[str]:
    """Alphabetic vocabulary entries that encode to exactly one token on their own."""
    tokenizer = Tokenizer.from_file(str(tokenizer_file))
    tokenizer.no_truncation()
    tokenizer.no_padding()
    vocab = sorted(w for w in tokenizer.get_vocab() if w.isascii() and w.isalpha() and len(w) >= 3)
    encoded = tokenizer.encode_batch(vocab, add_special_tokens=False)
    return [w for w, e in zip(vocab, encoded, strict=True) if len(e.ids) == 1]


def _text(words: list[str], rng: random.Random, n: int) -> str:
    return " ".join(rng.choice(words) for _ in range(n))


def _check_lengths(tokenizer_file: Path, texts: list[str], lengths: list[int]) -> None:
    tokenizer = Tokenizer.from_file(str(tokenizer_file))
    tokenizer.no_truncation()
    tokenizer.no_padding()
    got = [len(e.ids) for e in tokenizer.encode_batch(texts, add_special_tokens=True)]
    if got != lengths:
        raise RuntimeError(f"generated texts have {got[:5]}... tokens, wanted {lengths[:5]}...")


def utterances(
    tokenizer_file: Path, count: int, low: int = 8, high: int = 40, seed: int = 0
) -> list[str]:
    """``count`` utterances of ``low``..``high`` tokens, special tokens included."""
    rng = random.Random(seed)
    words = single_token_words(tokenizer_file)
    lengths = [rng.randint(low, high) for _ in range(count)]
    texts = [_text(words, rng, n - SPECIAL_TOKENS) for n in lengths]
    _check_lengths(tokenizer_file, texts, lengths)
    return texts


def document(tokenizer_file: Path, tokens: int, seed: int = 0) -> str:
    """A document of exactly ``tokens`` tokens with [CLS]/[SEP] (4,096 fills one window)."""
    rng = random.Random(seed + tokens)
    text = _text(single_token_words(tokenizer_file), rng, tokens - SPECIAL_TOKENS)
    _check_lengths(tokenizer_file, [text], [tokens])
    return text
