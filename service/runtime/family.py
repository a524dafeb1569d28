"""The serving side of the model-family contract: one runtime per task family.

A runtime is built from a bundle (``from_bundle``), turns a request into a :class:`Prepared`
(tokens and windows: what the batcher needs to know its cost and to slice it), runs several
prepared requests in shared ONNX calls (``run_prepared``) and says what ``/v1/models`` shows
(``describe``). A family registers one :class:`ServingFamily` (``service/families.py``); the
registry picks the runtime from the bundle's (task, head) with the table built from them; routes
and the batch scorer reach it only through the data plane (``service.dataplane``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol, TypeVar, runtime_checkable

from service.manifest import BundleManifest
from service.runtime.batcher import Prepared
from service.runtime.session import InferenceSession
from service.settings import Settings
from service.text.truncation import Truncation


@dataclass(frozen=True)
class RequestOptions:
    """Per-request options a runtime may use (the others ignore them)."""

    top_k: int | None = None
    alternatives: int = 0  # NER: next-best labels per entity (label marginals), 0 = none
    truncation: Truncation = "window"  # texts over one window: read all, refuse, or cut


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


@runtime_checkable
class SequenceHeads(Protocol):
    """A runtime whose one pass also answers named sequence heads (classes per text, as a
    classifier bundle decides them) besides its own result, e.g. one encoder with an intent, a
    command and an entity head. ``/v1/classify`` answers one head (the request's ``head``,
    default :attr:`intent_head`); a family whose route is ``parse`` answers ``/v1/parse`` alone
    (its result then also carries the entities), the intent head as the intent."""

    intent_head: str  # the head answered when none is named (/v1/parse's intent)
    result_type: type[Result]  # what ``run_prepared`` answers

    def head_kinds(self) -> dict[str, Literal["multi-label", "single-label"]]:
        """Every sequence head's decision kind, by name, in the bundle's order."""

    def head_labels(self, name: str) -> list[str]:
        """One head's classes, in its probabilities' order."""

    def head_prediction(self, result: Any, name: str) -> Any:
        """One head's answer in ``result``, as a classifier's prediction (``ClassPrediction``)."""


RuntimeFactory = Callable[[BundleManifest, Path, InferenceSession, Settings], Runtime[Any, Any]]
# A family that runs no ONNX graph opens its own session (verified manifest, bundle, settings).
SessionFactory = Callable[[BundleManifest, Path, Settings], InferenceSession]


@dataclass(frozen=True)
class Resolved:
    """Another loaded model, as a composed runtime sees it: its verified manifest, its bundle
    directory (to check it is the bundle that was referenced) and its ready runtime."""

    manifest: BundleManifest
    bundle_dir: Path
    runtime: Runtime[Any, Any]


# name -> that loaded model; raises BundleError (service.bundle) when none is loaded by that name.
Resolve = Callable[[str], Resolved]

# A runtime for a bundle that runs other loaded models (``BundleManifest.references()`` not
# empty): no session of its own; it runs the models it resolves, loaded once and shared with
# their own routes.
ComposedFactory = Callable[[BundleManifest, Path, Settings, Resolve], Runtime[Any, Any]]

# Unit of batch evaluation: (class, start, end); for documents start = end = 0.
Unit = tuple[str, int, int]


class BadRecord(ValueError):
    """A batch record the model cannot score; the message is the reason written to the error
    file."""


class BatchRecords(Protocol):
    """How the batch scorer (``service.batch``) writes and evaluates one family's records."""

    @property
    def gold_field(self) -> str:
        """Where a record keeps its gold annotation for ``--eval``."""

    @property
    def items_key(self) -> str:
        """The list a result object holds (``entities``, ``labels``, ``postures``)."""

    def results(
        self, prediction: Any, labels: list[str], return_scores: bool
    ) -> list[dict[str, Any]]:
        """The route's result objects (as JSON), one per text of the prediction."""

    def result(self, prediction: Any, labels: list[str], return_scores: bool) -> dict[str, Any]:
        """The route's result object (as JSON) of a one-text prediction."""

    def eval_classes(self, labels: list[str]) -> list[str] | None:
        """Classes macro-F1 averages over (None: those seen in gold or predictions)."""

    def eval_units(
        self,
        runtime: Runtime[Any, Any],
        labels: list[str],
        text: str,
        gold: Any,
        result: dict[str, Any],
    ) -> tuple[set[Unit], set[Unit]]:
        """(gold units, predicted units) of one record; raises BadRecord on malformed gold."""


@dataclass(frozen=True)
class ServingFamily:
    """Everything the service needs to know about one model family (one per package).

    ``task`` is the manifest's discriminator; ``runtimes`` maps each head of the family to the
    runtime factory that serves it; ``route`` is the model route that serves the family (a key of
    the registry's route table: ``/v1/<route>`` style name) and ``also_routes`` the others that
    serve it too (a posture bundle is a multi-label classifier, so ``classify`` serves it).
    ``session``: for a family whose bundles hold no ONNX graph, what stands in the runtime's
    ``session`` (its provider is shown in ``/v1/models``); None: an ONNX session of
    ``manifest.onnx`` and the bundle's stored self-check sample re-run at load.
    """

    task: str
    manifest: type[BundleManifest]
    runtimes: dict[str, RuntimeFactory]
    route: str
    batch: BatchRecords
    also_routes: tuple[str, ...] = field(default=())
    # A family whose bundles hold files but no ONNX graph (the manifest's ``has_graph`` is
    # False, no ``references()``): opens its own session from those files instead of ONNX
    # Runtime; the self-check is skipped (the family's parity report covers it).
    session: SessionFactory | None = None
    # Heads of bundles that run other loaded models (the manifest's ``references()`` is not
    # empty): the factory receives a resolver of those models instead of a session.
    composed: dict[str, ComposedFactory] = field(default_factory=dict)
    # On ``also_routes``, a request naming no model takes this family's bundle only when no
    # bundle of the route's other families is loaded: a bundle that serves a route on the side
    # (a multi-head bundle's entities) never makes an existing unnamed call ambiguous.
    yields_on_also_routes: bool = False
    # Whether two answers of this family's bundles agree (shadow traffic, docs/operating/
    # versions.md): e.g. the same entities, the same decided classes. None: shadow copies of its
    # bundles are run but not compared.
    agreement: Callable[[Any, Any], bool] | None = None
