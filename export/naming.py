"""Bundle names: lower-case identifiers the API and metrics can carry as labels."""

from __future__ import annotations

import re
from pathlib import Path

from export.errors import ExportError


def bundle_name(name: str | None, out: Path) -> str:
    """``name`` if given, else the output directory's name, normalised to ``[a-z0-9._-]``."""
    raw = name or out.name
    cleaned = re.sub(r"[^a-z0-9._-]+", "-", raw.lower()).strip("-._")
    if not cleaned:
        raise ExportError(f"cannot derive a bundle name from {raw!r}; pass --name")
    return cleaned
