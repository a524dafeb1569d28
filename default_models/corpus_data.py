"""The word lists and templates of the default corpora, read from ``default_models/data/*.json``.

The generators (:mod:`default_models.food_corpus`, :mod:`default_models.legal_corpus`,
:mod:`default_models.intent_corpus`) keep the logic and the tuning constants; the literal material
they draw from lives in one JSON file each, an object whose keys name the lists (order kept).
"""

from __future__ import annotations

import json
from importlib import resources
from typing import Any


class CorpusData:
    """One data file; each accessor checks the shape it promises and returns immutable tuples."""

    def __init__(self, name: str) -> None:
        self.name = name
        text = resources.files("default_models").joinpath("data", name).read_text("utf-8")
        self._data: dict[str, Any] = json.loads(text)

    def _get(self, key: str) -> Any:
        if key not in self._data:
            raise KeyError(f"default_models/data/{self.name} has no {key!r}")
        return self._data[key]

    def strings(self, key: str) -> tuple[str, ...]:
        return _strings(self._get(key), f"{self.name}:{key}")

    def mapping(self, key: str) -> dict[str, tuple[str, ...]]:
        value = self._get(key)
        if not isinstance(value, dict):
            raise TypeError(f"{self.name}:{key} is not an object of lists")
        return {k: _strings(v, f"{self.name}:{key}.{k}") for k, v in value.items()}

    def pairs(self, key: str) -> tuple[tuple[str, str], ...]:
        rows = [_strings(row, f"{self.name}:{key}") for row in self._get(key)]
        if any(len(row) != 2 for row in rows):
            raise TypeError(f"{self.name}:{key} holds rows that are not pairs")
        return tuple((a, b) for a, b in rows)


def _strings(value: object, where: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise TypeError(f"{where} is not a list of strings")
    return tuple(value)
