"""Build the PyTorch span model to export: any encoder the NER families accept, plus three linear
heads read through a sigmoid: start pointers and end pointers (one output per entity type) and an
inside-span head (one output per type, or one shared by all types).

What training code writes: ``self.<encoder> = AutoModel.from_config(config)``,
``self.start_head = nn.Linear(hidden, types)``, ``self.end_head = ...``, ``self.inside_head =
nn.Linear(hidden, types or 1)``. The encoder prefix is found as for the NER families
(:func:`families.ner.model.find_encoder_prefix`); the head modules are found by name (``start``,
``end``, ``inside``/``span``/``inner`` in the module's last name component) or given. Every key the
model would not read, and every head key it needs but cannot find, is an error naming them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn
from transformers import AutoModelForTokenClassification, PreTrainedModel

from export.checkpoint import RawCheckpoint, StateDict, load_checked
from export.encoders import find_encoder_prefix, model_inputs
from export.errors import ExportError
from families.span.spec import PARTS, Part

# Last name component of each head module, when the key names are not given.
# In priority order: ``span`` names the inside head only when no module says inside/inner, and
# modules taken by the start and end heads are no candidates (``span_start``, ``span_end``).
HEAD_PATTERNS: dict[Part, tuple[re.Pattern[str], ...]] = {
    "start": (re.compile(r"start", re.IGNORECASE),),
    "end": (re.compile(r"(^|_)end", re.IGNORECASE),),
    "inside": (re.compile(r"inside|inner", re.IGNORECASE), re.compile(r"span", re.IGNORECASE)),
}


class SpanScores(nn.Module):
    """``f(*inputs) -> [batch, tokens, 3 * types]``: sigmoid start | end | inside (per type)."""

    def __init__(
        self,
        encoder: PreTrainedModel,
        input_names: list[str],
        heads: dict[Part, nn.Linear],
        types: int,
    ) -> None:
        super().__init__()
        self.encoder = encoder
        self.input_names = input_names
        self.start = heads["start"]
        self.end = heads["end"]
        self.inside = heads["inside"]
        self.types = types

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        hidden = self.encoder(**dict(zip(self.input_names, inputs, strict=True)))[0]
        inside = torch.sigmoid(self.inside(hidden))
        if inside.shape[-1] == 1:  # a shared inside head: the same column for every type
            inside = inside.expand(-1, -1, self.types)
        start, end = torch.sigmoid(self.start(hidden)), torch.sigmoid(self.end(hidden))
        return torch.cat([start, end, inside], dim=-1)


@dataclass
class SpanModel:
    """What ONNX will run (``scores``) and what the manifest records."""

    scores: SpanScores
    labels: list[str]
    encoder_prefix: str
    head_keys: dict[Part, str]

    @property
    def encoder(self) -> PreTrainedModel:
        return self.scores.encoder

    @property
    def input_names(self) -> list[str]:
        return self.scores.input_names

    @property
    def inside(self) -> Literal["per-type", "shared"]:
        return "shared" if self.scores.inside.out_features == 1 else "per-type"


def _modules(keys: list[str]) -> dict[str, list[str]]:
    """Module name → its parameter keys (``a.b.weight`` → ``a.b``)."""
    found: dict[str, list[str]] = {}
    for key in keys:
        module, _, _ = key.rpartition(".")
        found.setdefault(module, []).append(key)
    return found


def find_head_keys(state: StateDict, given: dict[Part, str | None], source: str) -> dict[Part, str]:
    """The module name of each head: given, or the one 2-D ``weight`` module matching its part."""
    linear = {m for m, keys in _modules(list(state)).items() if f"{m}.weight" in keys and m}
    linear = {m for m in linear if state[f"{m}.weight"].dim() == 2}
    heads: dict[Part, str] = {}
    for part in PARTS:
        name = given.get(part)
        if name is not None:
            name = name.removesuffix(".weight").rstrip(".")
            if f"{name}.weight" not in state:
                raise ExportError(
                    f"{source}: no {name}.weight for the {part} head (--{part}-key {name}); "
                    f"candidate modules: {sorted(linear)[:12]}"
                )
            heads[part] = name
            continue
        free = sorted(linear - set(heads.values()))
        matches: list[str] = []
        for pattern in HEAD_PATTERNS[part]:
            matches = matches or [m for m in free if pattern.search(m.rsplit(".", 1)[-1])]
        if len(matches) != 1:
            raise ExportError(
                f"{source}: {'no' if not matches else 'several'} {part} head module(s) "
                f"{matches} among {sorted(linear)[:12]}; pass --{part}-key MODULE"
            )
        heads[part] = matches[0]
    if len(set(heads.values())) != len(PARTS):
        raise ExportError(f"{source}: one module serves several heads: {heads}")
    return heads


def _head(
    state: StateDict, name: str, part: Part, types: int, hidden: int, source: str
) -> nn.Linear:
    weight = state[f"{name}.weight"]
    allowed = {(types, hidden)} | ({(1, hidden)} if part == "inside" else set())
    if tuple(weight.shape) not in allowed:
        raise ExportError(
            f"{source}: {name}.weight has shape {tuple(weight.shape)}; the {part} head needs "
            f"{' or '.join(str(s) for s in sorted(allowed))} for {types} entity types and "
            f"hidden size {hidden}"
        )
    bias = state.get(f"{name}.bias")
    linear = nn.Linear(hidden, int(weight.shape[0]), bias=bias is not None)
    with torch.no_grad():
        linear.weight.copy_(weight)
        if bias is not None:
            if tuple(bias.shape) != (weight.shape[0],):
                raise ExportError(f"{source}: {name}.bias has shape {tuple(bias.shape)}")
            linear.bias.copy_(bias)
    if not all(torch.isfinite(p).all() for p in linear.parameters()):
        raise ExportError(f"{source}: the {part} head {name} holds NaN or infinity")
    return linear.eval()


def _check_labels(labels: list[str], source: str) -> None:
    if len(set(labels)) != len(labels):
        raise ExportError(f"{source}: duplicate entity types in {labels}")
    tagged = [label for label in labels if re.match(r"^[BIESLU]-|^O$", label)]
    if tagged:
        raise ExportError(
            f"{source}: span labels are entity types (PER, LOC, ...), not tags: {tagged}; a "
            "tagger exports with `python -m export ner`"
        )


def build_span_model(
    raw: RawCheckpoint,
    given: dict[Part, str | None] | None = None,
    encoder_prefix: str | None = None,
) -> SpanModel:
    """The checked span model; any mismatch is an ExportError before a slow step runs."""
    _check_labels(raw.labels, raw.source)
    state, types = raw.state_dict, len(raw.labels)
    keys = find_head_keys(state, given or {}, raw.source)
    config = raw.config
    config.num_labels = 1
    try:
        holder = AutoModelForTokenClassification.from_config(config)
    except ValueError as exc:
        raise ExportError(f"{raw.source}: no encoder for this config ({exc})") from exc
    hidden = int(getattr(config, "hidden_size", None) or config.dim)
    heads = {part: _head(state, keys[part], part, types, hidden, raw.source) for part in PARTS}
    head_keys = {k for m in keys.values() for k in (f"{m}.weight", f"{m}.bias")}
    rest = {k: v for k, v in state.items() if k not in head_keys}
    prefix = find_encoder_prefix(rest, holder, encoder_prefix)
    lead = f"{prefix}." if prefix else ""
    unused = sorted(k for k in rest if not k.startswith(lead))
    if unused:
        raise ExportError(
            f"{raw.source}: keys neither under the encoder prefix {prefix!r} nor in the heads "
            f"{keys}: {unused[:8]}{' …' if len(unused) > 8 else ''}; name the heads with "
            "--start-key/--end-key/--inside-key or the encoder with --encoder-prefix"
        )
    encoder = holder.base_model
    weights = {
        k[len(lead) :]: v for k, v in rest.items() if not k[len(lead) :].startswith("pooler.")
    }
    load_checked(encoder, weights, raw.source, f"{config.model_type} encoder config")
    encoder = encoder.eval()
    scores = SpanScores(encoder, model_inputs(encoder), heads, types).eval()
    return SpanModel(scores, list(raw.labels), prefix, keys)
