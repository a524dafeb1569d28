"""Which shard a record belongs to: a stable hash of its id, the same on every machine."""

from __future__ import annotations

import hashlib
import json
from typing import Any


def id_key(value: Any) -> str:
    """A record id as a canonical string (1 and "1" are different ids)."""
    return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def shard_of(key: str, count: int) -> int:
    """SHA-256 of the canonical id, first 8 bytes, modulo ``count`` (not Python's salted hash)."""
    # surrogatepass: an id holding a lone surrogate still has a shard (it goes to the error file)
    digest = hashlib.sha256(key.encode("utf-8", "surrogatepass")).digest()
    return int.from_bytes(digest[:8], "big") % count


def parse_shard(text: str) -> tuple[int, int]:
    """``"i/n"`` with 0 <= i < n."""
    index, sep, count = text.partition("/")
    if not sep or not index.strip().isdigit() or not count.strip().isdigit():
        raise ValueError(f"--shard must be INDEX/COUNT, e.g. 0/4; got {text!r}")
    i, n = int(index), int(count)
    if n < 1 or not 0 <= i < n:
        raise ValueError(f"--shard {text}: need 0 <= INDEX < COUNT")
    return i, n
