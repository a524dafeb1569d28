"""The per-request input policy for texts longer than one model window (NER and classifiers).

``window`` (default): every window is read, as always. ``error``: a text that needs more than one
window is refused (422 naming the text, its tokens and the window capacity). ``truncate``: only the
first window is read and the result says ``truncated: true``; what follows is not read at all (no
entity there, no influence on a class). Every result reports ``tokens`` and ``windows`` (read).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, TypeVar

from service.errors import LimitExceeded

Truncation = Literal["window", "error", "truncate"]
T = TypeVar("T")


class NeedsWindows(LimitExceeded):
    """``truncation: "error"`` and a text that does not fit one window (422, naming the text)."""

    def __init__(self, field: str, tokens: int, capacity: int) -> None:
        super().__init__(
            f"{field} holds {tokens} tokens, more than one window of {capacity}; send "
            "truncation 'window' to read it all or 'truncate' to read the first window only",
            field=field,
            limit=capacity,
        )


def apply_policy(
    policy: Truncation, windows: Sequence[T], tokens: int, capacity: int, field: str
) -> tuple[list[T], bool]:
    """The windows to read for one text and whether any of it is left unread."""
    if len(windows) <= 1 or policy == "window":
        return list(windows), False
    if policy == "error":
        raise NeedsWindows(field, tokens, capacity)
    return [windows[0]], True
