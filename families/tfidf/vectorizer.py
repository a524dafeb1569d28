"""A numpy re-implementation of scikit-learn's ``TfidfVectorizer.transform``, driven by data.

The bundle stores what a fitted vectorizer knows as plain data (``VectorizerSpec`` in
``bundle.json``, its terms as a JSON list, its idf weights as a ``.npy`` file), never a pickle.
The steps are scikit-learn's, in its order (``sklearn/feature_extraction/text.py``):

1. preprocess: ``str.lower`` if ``lowercase``, then accents stripped (``unicode``: NFKD without
   combining marks, skipped for pure-ASCII text; ``ascii``: NFKD encoded to ASCII, dropping the
   rest);
2. analyze: ``word``: the tokens ``re.findall(token_pattern)`` finds, stop words removed, then
   n-grams joined by one space; ``char``: runs of 2+ whitespace become one space, then every
   character n-gram; ``char_wb``: the same per whitespace-separated word padded with a space on
   each side (a word shorter than n gives one n-gram);
3. count the n-grams that are in the vocabulary (``binary``: presence only);
4. tf-idf: ``1 + log(count)`` if ``sublinear_tf``, times the term's idf, then each document's
   row divided by its L2 or L1 norm (rows of norm 0 stay 0);
5. a ``FeatureUnion`` concatenates its vectorizers' rows, each times its transformer weight.

Every document is read whole: there is no length limit and no window.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from families.tfidf.spec import VectorizerSpec

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]

_WHITE_SPACES = re.compile(r"\s\s+")


def strip_accents_unicode(text: str) -> str:
    try:
        text.encode("ASCII", errors="strict")
        return text
    except UnicodeEncodeError:
        normalized = unicodedata.normalize("NFKD", text)
        return "".join(c for c in normalized if not unicodedata.combining(c))


def strip_accents_ascii(text: str) -> str:
    normalized = unicodedata.normalize("NFKD", text)
    return normalized.encode("ASCII", "ignore").decode("ASCII")


def word_ngrams(tokens: list[str], low: int, high: int, stop_words: frozenset[str]) -> list[str]:
    if stop_words:
        tokens = [w for w in tokens if w not in stop_words]
    if high == 1:
        return tokens
    original = tokens
    if low == 1:
        out = list(original)
        low += 1
    else:
        out = []
    n_tokens = len(original)
    for n in range(low, min(high + 1, n_tokens + 1)):
        for i in range(n_tokens - n + 1):
            out.append(" ".join(original[i : i + n]))
    return out


def char_ngrams(text: str, low: int, high: int) -> list[str]:
    text = _WHITE_SPACES.sub(" ", text)
    size = len(text)
    if low == 1:
        out = list(text)
        low += 1
    else:
        out = []
    for n in range(low, min(high + 1, size + 1)):
        for i in range(size - n + 1):
            out.append(text[i : i + n])
    return out


def char_wb_ngrams(text: str, low: int, high: int) -> list[str]:
    text = _WHITE_SPACES.sub(" ", text)
    out: list[str] = []
    for word in text.split():
        padded = " " + word + " "
        size = len(padded)
        for n in range(low, high + 1):
            offset = 0
            out.append(padded[offset : offset + n])
            while offset + n < size:
                offset += 1
                out.append(padded[offset : offset + n])
            if offset == 0:  # a short word (shorter than n) counts once
                break
    return out


@dataclass(frozen=True)
class SparseRows:
    """CSR rows: document d's features are ``indices[indptr[d]:indptr[d+1]]`` with ``data``."""

    indptr: IntArray
    indices: IntArray
    data: FloatArray
    width: int

    def dense(self) -> FloatArray:
        out = np.zeros((len(self.indptr) - 1, self.width))
        for d in range(len(self.indptr) - 1):
            span = slice(self.indptr[d], self.indptr[d + 1])
            out[d, self.indices[span]] = self.data[span]
        return out


def concatenate(parts: Sequence[SparseRows]) -> SparseRows:
    """Rows side by side (a FeatureUnion): column offsets add up, each row keeps its order."""
    documents = len(parts[0].indptr) - 1
    indices: list[IntArray] = []
    data: list[FloatArray] = []
    counts = np.zeros(documents, dtype=np.int64)
    offset = 0
    for d in range(documents):
        offset = 0
        for part in parts:
            span = slice(part.indptr[d], part.indptr[d + 1])
            indices.append(part.indices[span] + offset)
            data.append(part.data[span])
            counts[d] += span.stop - span.start
            offset += part.width
    width = sum(p.width for p in parts)
    indptr = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    if not indices:
        return SparseRows(indptr, np.zeros(0, np.int64), np.zeros(0), width)
    return SparseRows(indptr, np.concatenate(indices), np.concatenate(data), width)


class TfidfTransform:
    """One fitted vectorizer as data: ``transform(texts)`` gives its tf-idf rows."""

    def __init__(self, spec: VectorizerSpec, terms: list[str], idf: FloatArray | None) -> None:
        if len(terms) != spec.features:
            raise ValueError(f"{spec.features} features declared, {len(terms)} terms stored")
        if idf is not None and idf.shape != (spec.features,):
            raise ValueError(f"idf must hold {spec.features} weights, not {idf.shape}")
        self.spec = spec
        self.vocabulary = {term: i for i, term in enumerate(terms)}
        self.dtype = np.dtype(spec.dtype)
        self.idf = None if idf is None else idf.astype(self.dtype)
        self.stop_words = frozenset(spec.stop_words or ())
        self._pattern = re.compile(spec.token_pattern) if spec.analyzer == "word" else None
        self._accents: Callable[[str], str] | None = {
            None: None,
            "unicode": strip_accents_unicode,
            "ascii": strip_accents_ascii,
        }[spec.strip_accents]

    def analyze(self, text: str) -> list[str]:
        """The n-grams of one document, as scikit-learn's ``build_analyzer()`` returns them."""
        if self.spec.lowercase:
            text = text.lower()
        if self._accents is not None:
            text = self._accents(text)
        low, high = self.spec.ngram_range
        if self.spec.analyzer == "char":
            return char_ngrams(text, low, high)
        if self.spec.analyzer == "char_wb":
            return char_wb_ngrams(text, low, high)
        assert self._pattern is not None
        return word_ngrams(self._pattern.findall(text), low, high, self.stop_words)

    def transform(self, texts: Sequence[str]) -> SparseRows:
        indptr = [0]
        indices: list[int] = []
        counts: list[int] = []
        for text in texts:
            found = Counter(
                j for j in (self.vocabulary.get(g) for g in self.analyze(text)) if j is not None
            )
            for j in sorted(found):
                indices.append(j)
                counts.append(found[j])
            indptr.append(len(indices))
        data = np.asarray(counts, dtype=self.dtype)
        cols = np.asarray(indices, dtype=np.int64)
        if self.spec.binary:
            data[:] = 1
        if self.spec.sublinear_tf:
            np.log(data, out=data)
            data += 1
        if self.idf is not None:
            data *= self.idf[cols]
        bounds = np.asarray(indptr, dtype=np.int64)
        if self.spec.norm is not None:
            for d in range(len(texts)):
                row = data[bounds[d] : bounds[d + 1]]
                total = np.sqrt((row * row).sum()) if self.spec.norm == "l2" else np.abs(row).sum()
                if total != 0:
                    row /= total
        if self.spec.weight != 1.0:
            data *= self.dtype.type(self.spec.weight)
        return SparseRows(bounds, cols, data.astype(np.float64), self.spec.features)


class FeatureSpace:
    """The pipeline's feature step: one vectorizer, or a FeatureUnion of several."""

    def __init__(self, parts: list[TfidfTransform]) -> None:
        if not parts:
            raise ValueError("a feature space needs at least one vectorizer")
        self.parts = parts
        self.width = sum(p.spec.features for p in parts)

    def transform(self, texts: Sequence[str]) -> SparseRows:
        rows = [p.transform(texts) for p in self.parts]
        return rows[0] if len(rows) == 1 else concatenate(rows)
