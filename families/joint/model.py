"""Build the joint PyTorch model to export: one encoder (whatever ``AutoModel`` builds from
``config.json``), one token head (linear; CRF or softmax), N linear sequence heads.

Heads are linear layers found in the checkpoint by key (``<prefix>.weight`` ``[classes, hidden]``
and ``<prefix>.bias``); their names, kinds, poolings and labels come from options, the config or
auto-detection. Every key must be used: a missing or unused key stops the export here, named.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, cast

import torch
from torch import nn
from torchcrf import CRF
from transformers import AutoModel, PreTrainedModel

from export.checkpoint import RawCheckpoint, StateDict, load_checked
from export.encoders import COMMON_PREFIXES, model_inputs
from export.errors import ExportError
from families.classify.spec import ClassifierHead
from families.joint.spec import MASK_VALUE, Pooling
from families.ner.tagging import SchemeName, TagSchemeError, detect_scheme

CRF_PARTS = ("start_transitions", "end_transitions", "transitions")
TOKEN_HINTS = ("token", "tag", "ner", "entit", "slot", "bio")
NAME_SUFFIXES = ("_classifier", "_head", "_fc", "_linear", "_proj", "_out", "_logits")
TokenKind = Literal["crf", "softmax"]


@dataclass(frozen=True)
class HeadOptions:
    """What the command line (or a caller) says about the heads; ``None``: auto-detected."""

    encoder_prefix: str | None = None
    token_head: str | None = None  # key prefix of the token head's linear layer
    token_kind: TokenKind | None = None
    crf_prefix: str | None = None
    sequence_heads: tuple[str, ...] = ()  # key prefixes; empty: every other linear layer
    head_labels: Mapping[str, list[str]] = field(default_factory=dict)
    head_kinds: Mapping[str, ClassifierHead] = field(default_factory=dict)
    pooling: Pooling = "cls"
    head_pooling: Mapping[str, Pooling] = field(default_factory=dict)
    mask_buffer: str | None = None  # key of the token head's fixed logit mask
    mask_labels: tuple[str, ...] = ()
    intent_head: str | None = None


@dataclass(frozen=True)
class SeqHeadInfo:
    name: str
    key: str
    labels: list[str]
    kind: ClassifierHead
    pooling: Pooling


def head_name(key: str) -> str:
    """``intent_classifier.linear`` → ``intent``: the first part without a layer-ish suffix."""
    first = key.split(".", 1)[0]
    for suffix in NAME_SUFFIXES:
        if first.endswith(suffix) and len(first) > len(suffix):
            return first[: -len(suffix)]
    return first


class JointModule(nn.Module):
    """``f(*inputs) -> (token scores, *sequence logits, packed)``, what the graph computes.

    Token scores: logits plus the fixed mask (CRF emissions), or their log-softmax; masked labels
    are then written as exactly ``MASK_VALUE`` (no rounding of ``x - 1e9`` reaches the output).
    """

    def __init__(
        self,
        encoder: PreTrainedModel,
        input_names: list[str],
        token_head: nn.Linear,
        log_softmax: bool,
        masked: torch.Tensor,
        heads: dict[str, nn.Linear],
        pooling: dict[str, Pooling],
    ) -> None:
        super().__init__()
        self.encoder = encoder
        self.input_names = input_names
        self.token_head = token_head
        self.log_softmax = log_softmax
        self.register_buffer("masked", masked.bool())
        self.register_buffer("mask_add", masked.bool().float() * MASK_VALUE)
        self.heads = nn.ModuleDict(heads)
        self.pooling = pooling

    def forward(self, *inputs: torch.Tensor) -> tuple[torch.Tensor, ...]:
        feed = dict(zip(self.input_names, inputs, strict=True))
        out = self.encoder(**feed)
        hidden: torch.Tensor = out[0]
        logits = self.token_head(hidden) + self.mask_add
        scores = torch.log_softmax(logits, dim=-1) if self.log_softmax else logits
        masked = cast(torch.Tensor, self.masked)
        scores = torch.where(masked, torch.full_like(scores, MASK_VALUE), scores)
        sequence = []
        for name, head in self.heads.items():
            sequence.append(head(self._pool(self.pooling[name], hidden, feed, out)))
        width = scores.shape[1]
        packed = torch.cat(
            [scores, *(s.unsqueeze(1).expand(-1, width, -1) for s in sequence)], dim=-1
        )
        return (scores, *sequence, packed)

    def _pool(
        self, how: Pooling, hidden: torch.Tensor, feed: dict[str, torch.Tensor], out: Any
    ) -> torch.Tensor:
        if how == "cls":
            return hidden[:, 0]
        if how == "pooler":
            pooled: torch.Tensor = out.pooler_output
            return pooled
        mask = feed["attention_mask"].unsqueeze(-1).to(hidden.dtype)
        return (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1.0)


@dataclass
class JointModel:
    module: JointModule
    crf: CRF | None
    labels: list[str]  # token head tags
    scheme: SchemeName
    token_name: str
    masked_labels: list[str]
    heads: list[SeqHeadInfo]
    intent_head: str
    encoder_prefix: str
    notes: list[str] = field(default_factory=list)

    @property
    def token_kind(self) -> TokenKind:
        return "softmax" if self.crf is None else "crf"

    @property
    def encoder(self) -> PreTrainedModel:
        return self.module.encoder

    @property
    def input_names(self) -> list[str]:
        return self.module.input_names

    def outputs(self) -> list[str]:
        """Graph output names: one per head, then the packed one."""
        from families.joint.spec import PACKED_OUTPUT

        return [
            f"{self.token_name}_logits",
            *(f"{h.name}_logits" for h in self.heads),
            PACKED_OUTPUT,
        ]


def _linear_groups(state: StateDict, keys: list[str]) -> dict[str, tuple[int, int]]:
    """Key prefixes holding exactly a 2-D ``weight`` and a matching 1-D ``bias``: (out, in)."""
    parts: dict[str, dict[str, torch.Tensor]] = defaultdict(dict)
    for key in keys:
        prefix, _, leaf = key.rpartition(".")
        parts[prefix][leaf] = state[key]
    found = {}
    for prefix, tensors in parts.items():
        weight, bias = tensors.get("weight"), tensors.get("bias")
        if (
            set(tensors) == {"weight", "bias"}
            and weight is not None
            and bias is not None
            and weight.dim() == 2
            and tuple(bias.shape) == (weight.shape[0],)
        ):
            found[prefix] = (int(weight.shape[0]), int(weight.shape[1]))
    return found


def _encoder_prefix(state: StateDict, expected: set[str], own: str, given: str | None) -> str:
    candidates = [given.rstrip(".")] if given is not None else [own, *COMMON_PREFIXES, ""]

    def matches(prefix: str) -> int:
        lead = f"{prefix}." if prefix else ""
        return sum(k.startswith(lead) and k[len(lead) :] in expected for k in state)

    counts = {p: matches(p) for p in candidates}
    best = max(candidates, key=lambda p: counts[p])
    if counts[best] == 0:
        roots = sorted({k.split(".", 1)[0] for k in state})
        raise ExportError(
            f"no encoder weights under {[f'{p}.' if p else '(no prefix)' for p in candidates]}; "
            f"top-level names in the checkpoint: {roots}; pass --encoder-prefix"
        )
    return best


def _config_labels(config: Any) -> dict[str, list[str]]:
    given = getattr(config, "head_labels", None) or {}
    if not isinstance(given, dict):
        raise ExportError("config.json head_labels must map head names to label lists")
    return {str(k): [str(x) for x in v] for k, v in given.items()}


def _pick_token_head(groups: dict[str, tuple[int, int]], k: int, given: str | None) -> str:
    if given is not None:
        if given not in groups:
            raise ExportError(
                f"--token-head {given!r}: no linear layer {given}.weight/.bias in the checkpoint "
                f"(linear layers outside the encoder: {sorted(groups)})"
            )
        return given
    sized = [g for g, (out, _) in groups.items() if out == k]
    if len(sized) > 1:
        hinted = [g for g in sized if any(h in g.lower() for h in TOKEN_HINTS)]
        sized = hinted if len(hinted) == 1 else sized
    if len(sized) != 1:
        raise ExportError(
            f"cannot tell the token head: linear layers with {k} outputs (one per tag): {sized}; "
            f"all linear layers outside the encoder: {groups}; pass --token-head"
        )
    return sized[0]


def _crf_prefix(keys: list[str], given: str | None) -> str | None:
    prefixes = {k.rpartition(".")[0] for k in keys if k.rpartition(".")[2] in CRF_PARTS}
    found = [p for p in prefixes if all(f"{p}.{part}" in keys for part in CRF_PARTS)]
    if given is not None:
        if given not in found:
            raise ExportError(f"--crf-key {given!r}: no {given}.{{{','.join(CRF_PARTS)}}} keys")
        return given
    if len(found) > 1:
        raise ExportError(f"several CRF score sets {sorted(found)}; pass --crf-key")
    return found[0] if found else None


def _mask(raw: RawCheckpoint, keys: list[str], options: HeadOptions, used: set[str]) -> list[str]:
    """Labels never to emit: from the checkpoint's mask buffer and/or ``--mask-labels``."""
    labels, k, state = raw.labels, len(raw.labels), raw.state_dict
    if options.mask_buffer is not None:
        if options.mask_buffer not in state:
            raise ExportError(f"--mask-buffer {options.mask_buffer!r}: no such key")
        candidates = [options.mask_buffer]
    else:
        candidates = [
            key
            for key in keys
            if "mask" in key.rpartition(".")[2].lower() and tuple(state[key].shape) == (k,)
        ]
        if len(candidates) > 1:
            raise ExportError(f"several mask buffers {candidates}; pass --mask-buffer")
    masked: set[str] = set()
    for key in candidates:
        buffer = state[key]
        if tuple(buffer.shape) != (k,):
            raise ExportError(f"mask buffer {key} has shape {tuple(buffer.shape)}, expected ({k},)")
        if buffer.dtype == torch.bool:
            hits = buffer
        else:
            values = buffer.double()
            if not torch.isfinite(values).all():
                raise ExportError(f"mask buffer {key} holds NaN or infinity")
            if set(values.tolist()) <= {0.0, 1.0} and bool(values.any()):
                raise ExportError(
                    f"mask buffer {key} holds 0/1 values: additive (0 / -1e9) or boolean (True = "
                    "masked) expected; pass --mask-labels instead"
                )
            hits = values <= -1e3
        masked |= {labels[i] for i in torch.nonzero(hits).flatten().tolist()}
        used.add(key)
    unknown = [t for t in options.mask_labels if t not in labels]
    if unknown:
        raise ExportError(f"--mask-labels {unknown} are not token tags ({labels})")
    masked |= set(options.mask_labels)
    if "O" in masked:
        raise ExportError("the outside tag O cannot be masked")
    return [t for t in labels if t in masked]


def _encoder(raw: RawCheckpoint, options: HeadOptions, pooler: bool) -> tuple[PreTrainedModel, str]:
    try:
        encoder = AutoModel.from_config(raw.config)
    except ValueError as exc:
        raise ExportError(f"{raw.source}: no encoder for this config ({exc})") from exc
    if not pooler and getattr(encoder, "pooler", None) is not None:
        encoder.pooler = None  # no head reads it: its weights are ignored, as for taggers
    if pooler and getattr(encoder, "pooler", None) is None:
        raise ExportError(f"pooling 'pooler': a {raw.config.model_type} encoder has no pooler")
    expected = set(encoder.state_dict())
    prefix = _encoder_prefix(
        raw.state_dict, expected, encoder.base_model_prefix, options.encoder_prefix
    )
    return encoder, prefix


def build_joint(raw: RawCheckpoint, options: HeadOptions) -> JointModel:
    """The checked eval-mode joint model; every mismatch is an ExportError naming the keys."""
    try:
        scheme = detect_scheme(raw.labels)
    except TagSchemeError as exc:
        raise ExportError(f"token labels {raw.labels}: {exc}") from exc
    if len(set(raw.labels)) != len(raw.labels):
        raise ExportError(f"duplicate token labels in {raw.labels}")
    uses_pooler = options.pooling == "pooler" or "pooler" in options.head_pooling.values()
    encoder, prefix = _encoder(raw, options, uses_pooler)
    state, lead = raw.state_dict, f"{prefix}." if prefix else ""
    expected = set(encoder.state_dict())
    encoder_keys = [k for k in state if k.startswith(lead) and k[len(lead) :] in expected]
    ignored = [
        k
        for k in state
        if k.startswith(f"{lead}pooler.") and not uses_pooler and k not in encoder_keys
    ]
    ignored += [k for k in state if k.endswith("position_ids")]
    rest = [k for k in state if k not in set(encoder_keys) | set(ignored)]
    used: set[str] = set()
    crf_prefix = _crf_prefix(rest, options.crf_prefix)
    kind = options.token_kind or ("crf" if crf_prefix else "softmax")
    if kind == "crf" and crf_prefix is None:
        raise ExportError(f"a crf token head needs crf scores ({', '.join(CRF_PARTS)}); none found")
    groups = _linear_groups(state, rest)
    token_key = _pick_token_head(groups, len(raw.labels), options.token_head)
    hidden = int(state[f"{token_key}.weight"].shape[1])
    if groups[token_key][0] != len(raw.labels):
        raise ExportError(
            f"token head {token_key} has {groups[token_key][0]} outputs for {len(raw.labels)} tags"
        )
    masked = _mask(raw, rest, options, used)
    config_labels = _config_labels(raw.config)
    # Heads in a stable order: as named, else as their labels were given, else by key.
    order = [*options.head_labels, *config_labels]
    found = sorted((g for g in groups if g != token_key), key=lambda g: (
        order.index(head_name(g)) if head_name(g) in order else len(order), g
    ))  # fmt: skip
    seq_keys = list(options.sequence_heads) or found
    missing = [g for g in seq_keys if g not in groups]
    if missing:
        raise ExportError(
            f"sequence heads {missing}: no linear layers <head>.weight/.bias "
            f"(found: {sorted(groups)})"
        )
    if not seq_keys:
        raise ExportError(f"no sequence head: every linear layer is the token head {token_key}")
    infos, linears, poolings = [], {}, {}
    for key in seq_keys:
        name = head_name(key)
        labels = options.head_labels.get(name) or config_labels.get(name)
        if labels is None:
            raise ExportError(
                f"no labels for sequence head {name!r} ({key}): pass --head-labels {name}=FILE "
                "or give config.json head_labels"
            )
        out, width = groups[key]
        if out != len(labels) or width != hidden:
            raise ExportError(
                f"sequence head {name!r} ({key}.weight {out}x{width}) does not fit its "
                f"{len(labels)} labels and hidden size {hidden}"
            )
        head_kind = options.head_kinds.get(name, "single-label")
        if head_kind == "single-label" and len(labels) < 2:
            raise ExportError(f"sequence head {name!r}: a single-label head needs two labels")
        pooling = options.head_pooling.get(name, options.pooling)
        infos.append(SeqHeadInfo(name, key, labels, head_kind, pooling))
        linear = nn.Linear(width, out)
        linear.load_state_dict({"weight": state[f"{key}.weight"], "bias": state[f"{key}.bias"]})
        linears[name], poolings[name] = linear, pooling
        used |= {f"{key}.weight", f"{key}.bias"}
    names = [head_name(token_key), *(i.name for i in infos)]
    if len(set(names)) != len(names):
        raise ExportError(f"head names collide: {names} (from keys {[token_key, *seq_keys]})")
    unknown_opts = sorted(
        (set(options.head_labels) | set(options.head_kinds) | set(options.head_pooling))
        - set(names[1:])
    )
    if unknown_opts:
        raise ExportError(f"options name heads {unknown_opts}; the sequence heads are {names[1:]}")
    token_head = nn.Linear(hidden, len(raw.labels))
    token_head.load_state_dict(
        {"weight": state[f"{token_key}.weight"], "bias": state[f"{token_key}.bias"]}
    )
    used |= {f"{token_key}.weight", f"{token_key}.bias"}
    crf = None
    if kind == "crf":
        assert crf_prefix is not None
        crf = CRF(len(raw.labels), batch_first=True)
        try:
            crf.load_state_dict({p: state[f"{crf_prefix}.{p}"] for p in CRF_PARTS})
        except RuntimeError as exc:
            raise ExportError(
                f"{crf_prefix}.*: CRF scores do not fit {len(raw.labels)} tags"
            ) from exc
        crf = crf.eval()
        used |= {f"{crf_prefix}.{p}" for p in CRF_PARTS}
    unused = sorted(set(rest) - used)
    if unused:
        raise ExportError(
            f"{raw.source}: unused keys {unused[:8]}{' …' if len(unused) > 8 else ''} (token head "
            f"{token_key}, sequence heads {seq_keys}, crf {crf_prefix}); name the heads with "
            "--token-head / --sequence-head / --mask-buffer"
        )
    weights = {k[len(lead) :]: state[k] for k in encoder_keys}
    load_checked(encoder, weights, raw.source, f"{raw.config.model_type} encoder")
    mask = torch.tensor([t in masked for t in raw.labels])
    module = JointModule(
        encoder.eval(),
        model_inputs(encoder),
        token_head,
        kind == "softmax",
        mask,
        linears,
        poolings,
    ).eval()
    intent = options.intent_head or (
        "intent"
        if "intent" in names[1:]
        else next((i.name for i in infos if i.kind == "single-label"), infos[0].name)
    )
    if intent not in names[1:]:
        raise ExportError(f"--intent-head {intent!r} is not a sequence head ({names[1:]})")
    notes = [f"ignored {len(ignored)} pooler/position-id keys"] if ignored else []
    return JointModel(
        module, crf, list(raw.labels), scheme, names[0], masked, infos, intent, prefix, notes
    )
