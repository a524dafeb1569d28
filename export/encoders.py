"""What every family's export needs to know about a Hugging Face encoder: the inputs its graph
takes, its most tokens per window, and where a checkpoint keeps its weights."""

from __future__ import annotations

import inspect
from collections import Counter

from transformers import PreTrainedModel

from export.checkpoint import StateDict
from export.errors import ExportError

COMMON_PREFIXES = ("bert", "encoder", "model", "transformer", "backbone")
MODEL_INPUTS = ("input_ids", "attention_mask", "token_type_ids")


def model_inputs(model: PreTrainedModel) -> list[str]:
    """Inputs the architecture takes; no ``token_type_ids`` where it has no token types."""
    accepted = inspect.signature(model.forward).parameters
    names = [n for n in MODEL_INPUTS if n in accepted]
    if not getattr(model.config, "type_vocab_size", 0):
        names = [n for n in names if n != "token_type_ids"]
    return names


def position_limit(model: PreTrainedModel) -> int:
    """Most tokens per input: RoBERTa-style position ids start after the pad id (514 → 512)."""
    limit = int(model.config.max_position_embeddings)
    padding_idx = getattr(model.base_model.embeddings, "padding_idx", None)
    return limit - (int(padding_idx) + 1) if padding_idx is not None else limit


def find_encoder_prefix(state: StateDict, model: PreTrainedModel, given: str | None) -> str:
    """The prefix under which the checkpoint holds the encoder (``""``: bare encoder keys)."""
    own = model.base_model_prefix
    expected = {k.removeprefix(f"{own}.") for k in model.state_dict() if k.startswith(f"{own}.")}
    candidates = [given.rstrip(".")] if given is not None else [own, *COMMON_PREFIXES, ""]

    def matches(prefix: str) -> int:
        lead = f"{prefix}." if prefix else ""
        return sum(k.startswith(lead) and k[len(lead) :] in expected for k in state)

    counts = {p: matches(p) for p in candidates}
    best = max(candidates, key=lambda p: counts[p])
    if counts[best] == 0:
        present = Counter(k.split(".", 1)[0] for k in state)
        raise ExportError(
            f"no {model.config.model_type} encoder weights under "
            f"{[f'{p}.' if p else '(no prefix)' for p in candidates]}; prefixes in the "
            f"checkpoint: {dict(present)}; pass --encoder-prefix"
        )
    return best
