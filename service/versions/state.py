"""A loaded version's lifecycle states and how versions are ordered."""

from __future__ import annotations

from typing import Literal

from packaging.version import InvalidVersion, Version

State = Literal["loading", "self_checking", "warming", "ready", "draining", "failed"]
STATES: tuple[State, ...] = ("loading", "self_checking", "warming", "ready", "draining", "failed")
# Why a load failed (the ``reason`` label of infer_model_load_failures_total).
FailureKind = Literal["manifest", "sha256", "selfcheck", "memory", "error"]


def version_key(version: str) -> tuple[int, int, object, str]:
    """Sort key of a version string: integers numerically, then PEP 440 versions, then the rest
    as strings; "10" > "9", "1.10" > "1.9", and an integer sorts with PEP 440 versions."""
    try:
        return (1, 0, Version(version), version)
    except InvalidVersion:
        return (0, 0, version, version)


def highest(versions: list[str]) -> str:
    """The highest of ``versions`` by :func:`version_key`."""
    return max(versions, key=version_key)
