"""The serving side of the model-family contract: one runtime per task family.

A runtime is built from a bundle (``from_bundle``), turns a request into a :class:`Prepared`
(tokens and windows: what the batcher needs to know its cost and to slice it), runs several
prepared requests in shared ONNX calls (``run_prepared``) and says what ``/v1/models`` shows
(``describe``). The registry picks the runtime from the bundle's (task, head) with a table; routes
reach it only through the data plane (``service.api.common.infer``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar

from service.bundle import AnyManifest
from service.runtime.batcher import Prepared
from service.runtime.session import InferenceSession
from service.settings import Settings


@dataclass(frozen=True)
class RequestOptions:
    """Per-request options a runtime may use (the others ignore them)."""

    top_k: int | None = None


class Result(Protocol):
    """What the data plane records for every request."""

    timings: dict[str, float]
    tokens: int

    @property
    def total_windows(self) -> int: ...


P = TypeVar("P", bound=Prepared)
R = TypeVar("R", bound=Result)


class Runtime(Protocol[P, R]):
    session: InferenceSession
    max_chars: int  # longest text the data plane lets through (422 beyond)
    allow_blank: bool  # whether an empty text is a valid request (no entities) or a 422

    def prepare(self, texts: list[str], options: RequestOptions) -> P: ...

    def run_prepared(self, items: list[P]) -> list[R]: ...

    def run_slice(self, part: Any) -> Any:
        """ONNX work of one slice of a large request (``Prepared.split``), no decoding."""

    def merge(self, item: P, parts: list[Any]) -> R:
        """The request's result from its slices' outputs, in slice order."""

    def describe(self) -> dict[str, object]: ...


RuntimeFactory = Callable[[AnyManifest, Path, InferenceSession, Settings], Runtime[Any, Any]]
