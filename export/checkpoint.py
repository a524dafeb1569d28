"""The one checkpoint reader for every family: the forms people actually save.

a. a Hugging Face directory with ``config.json`` (``id2label`` = the labels), tokenizer files and a
   weights file (``model.safetensors`` or ``pytorch_model.bin``);
b. a weights file, with ``--base DIR`` for config + tokenizer and ``--labels FILE`` for the labels:
   a ``.safetensors`` file, or a PyTorch file holding a bare state dict
   (``torch.save(model.state_dict(), path)``) or a dict with one under ``model_state_dict``,
   ``state_dict`` (PyTorch Lightning) or ``model`` (optimizer state, epochs, metrics are ignored).

Anything else is refused with the top-level keys found. Where some keys start with ``model.`` (a
Lightning module holding the network as ``self.model``), the reading with that prefix stripped is
kept as an alternative: :func:`build_model` tries the weights as saved first and strips the prefix
only when that is what makes them fit the family's model.
"""

from __future__ import annotations

import pickle
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, TypeGuard, TypeVar

import torch
from transformers import AutoConfig, AutoTokenizer, PretrainedConfig, PreTrainedTokenizerFast

from export.errors import ExportError

StateDict = dict[str, torch.Tensor]
M = TypeVar("M")

# Where a training checkpoint keeps the model's weights, in the order they are looked for.
STATE_DICT_ENTRIES = ("model_state_dict", "state_dict", "model")
WRAPPER_PREFIX = "model."  # LightningModule.state_dict() of a module holding ``self.model``


@dataclass
class RawCheckpoint:
    config: PretrainedConfig
    tokenizer: PreTrainedTokenizerFast
    labels: list[str]
    state_dict: StateDict
    source: str
    # Other readings of the same weights (what was done to the keys, the keys), tried in order by
    # build_model when ``state_dict`` does not fit the family's model.
    alternatives: tuple[tuple[str, StateDict], ...] = ()


def read_labels_file(path: Path) -> list[str]:
    labels = [line.strip() for line in path.read_text(encoding="utf-8").splitlines()]
    labels = [label for label in labels if label]
    if not labels:
        raise ExportError(f"{path}: no labels found (expected one label per line)")
    return labels


def _labels_from_config(config: PretrainedConfig, where: Path) -> list[str]:
    id2label = getattr(config, "id2label", None) or {}
    labels = [id2label[i] for i in sorted(int(k) for k in id2label)] if id2label else []
    if not labels or all(label.startswith("LABEL_") for label in labels):
        raise ExportError(f"{where}/config.json has no id2label with real label names")
    return labels


def _load_weights(directory: Path) -> StateDict:
    safetensors_file, bin_file = directory / "model.safetensors", directory / "pytorch_model.bin"
    if safetensors_file.is_file():
        from safetensors.torch import load_file

        try:
            return load_file(str(safetensors_file))
        except Exception as exc:
            raise ExportError(f"{safetensors_file}: cannot read weights ({exc})") from exc
    if bin_file.is_file():
        return _torch_load(bin_file, trust=False)
    raise ExportError(f"{directory}: no model.safetensors or pytorch_model.bin")


def _torch_load(path: Path, trust: bool) -> Any:
    try:
        return torch.load(path, map_location="cpu", weights_only=not trust)
    except pickle.UnpicklingError as exc:
        raise ExportError(
            f"{path}: holds objects beyond tensors and plain containers; if you trust the file, "
            f"pass --trust-checkpoint to unpickle it fully ({str(exc).splitlines()[0]})"
        ) from exc
    except Exception as exc:
        raise ExportError(f"{path}: not a readable PyTorch checkpoint ({exc})") from exc


def _tokenizer(directory: Path) -> PreTrainedTokenizerFast:
    try:
        tokenizer = AutoTokenizer.from_pretrained(str(directory), use_fast=True)
    except Exception as exc:
        raise ExportError(f"{directory}: cannot load a tokenizer ({exc})") from exc
    if not isinstance(tokenizer, PreTrainedTokenizerFast):
        raise ExportError(f"{directory}: needs a fast tokenizer (tokenizer.json or vocab.txt)")
    return tokenizer


def _config(directory: Path) -> PretrainedConfig:
    if not (directory / "config.json").is_file():
        raise ExportError(f"{directory}: no config.json")
    try:
        return AutoConfig.from_pretrained(str(directory))
    except Exception as exc:
        raise ExportError(f"{directory}/config.json: {exc}") from exc


def _is_state_dict(value: object) -> TypeGuard[StateDict]:
    return (
        isinstance(value, dict)
        and bool(value)
        and all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in value.items())
    )


def _top_level(payload: object) -> str:
    if isinstance(payload, dict):
        keys = [str(k) for k in payload]
        return f"top-level keys {keys[:12]}{' …' if len(keys) > 12 else ''}"
    return f"a {type(payload).__name__}, not a dict"


def _state_dict_of(payload: object, path: Path) -> StateDict:
    """The weights of a loaded PyTorch file: a bare state dict, or one under a known entry."""
    if _is_state_dict(payload):
        return payload
    if isinstance(payload, dict):
        for entry in STATE_DICT_ENTRIES:
            state = payload.get(entry)
            if _is_state_dict(state):
                return state
    raise ExportError(
        f"{path}: holds {_top_level(payload)}; expected a state dict (parameter name -> tensor) "
        f"or a dict holding one under {' or '.join(repr(e) for e in STATE_DICT_ENTRIES)}, "
        "a .safetensors file or a Hugging Face directory (see docs/checkpoints.md)"
    )


def _read_weights_file(path: Path, trust: bool) -> StateDict:
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        try:
            return load_file(str(path))
        except Exception as exc:
            raise ExportError(f"{path}: cannot read safetensors weights ({exc})") from exc
    return _state_dict_of(_torch_load(path, trust=trust), path)


def _alternatives(state: StateDict) -> tuple[tuple[str, StateDict], ...]:
    """The ``model.``-stripped reading, where some keys carry the prefix and none collide."""
    stripped = {k.removeprefix(WRAPPER_PREFIX): v for k, v in state.items()}
    if len(stripped) != len(state) or stripped.keys() == state.keys():
        return ()
    return ((f"with the {WRAPPER_PREFIX!r} prefix stripped", stripped),)


def build_model(raw: RawCheckpoint, build: Callable[[RawCheckpoint], M]) -> M:
    """``build(raw)`` with the first reading of the weights that fits the model it builds.

    The weights as saved come first; an alternative (``model.`` stripped) is used only when the
    family's own checks refuse them and accept it. If none fits, the error names every try.
    """
    try:
        return build(raw)
    except ExportError as exc:
        if not raw.alternatives:
            raise
        first = exc
    errors = [f"as saved: {first}"]
    for what, state in raw.alternatives:
        try:
            return build(replace(raw, state_dict=state, alternatives=()))
        except ExportError as exc:
            errors.append(f"{what}: {exc}")
    raise ExportError(
        f"{raw.source}: the weights fit the model in no reading; " + "; ".join(errors)
    ) from first


def load_checkpoint(
    checkpoint: Path,
    base: Path | None = None,
    labels_file: Path | None = None,
    trust_checkpoint: bool = False,
) -> RawCheckpoint:
    """Read any accepted checkpoint form into config, tokenizer, labels and a raw state dict."""
    if not checkpoint.exists():
        raise ExportError(f"{checkpoint}: no such file or directory")
    if checkpoint.is_dir():
        config = _config(checkpoint)
        labels = read_labels_file(labels_file) if labels_file else None
        labels = labels or _labels_from_config(config, checkpoint)
        return RawCheckpoint(
            config, _tokenizer(checkpoint), labels, _load_weights(checkpoint), str(checkpoint)
        )
    if base is None or labels_file is None:
        raise ExportError(
            f"{checkpoint} is a weights file: pass --base DIR (encoder config and "
            "tokenizer) and --labels FILE (one label per line)"
        )
    state = _read_weights_file(checkpoint, trust_checkpoint)
    return RawCheckpoint(
        _config(base),
        _tokenizer(base),
        read_labels_file(labels_file),
        state,
        str(checkpoint),
        _alternatives(state),
    )


def save_serving_tokenizer(tokenizer: PreTrainedTokenizerFast, path: Path) -> None:
    """Write ``tokenizer.json`` without truncation/padding: the service windows long texts."""
    backend = tokenizer.backend_tokenizer
    backend.no_truncation()
    backend.no_padding()
    backend.save(str(path))


# Buffers HF recreates itself: their absence or presence in a checkpoint means nothing.
_IGNORABLE = ("position_ids",)


def load_checked(
    module: torch.nn.Module, weights: dict[str, torch.Tensor], source: Path | str, what: str
) -> None:
    """Load ``weights`` into ``module``; any missing or unexpected key is an ExportError naming
    ``what`` the weights should have been, before any slow step runs."""
    try:
        result = module.load_state_dict(weights, strict=False)
    except RuntimeError as exc:
        raise ExportError(f"{source}: weights do not fit the config: {exc}") from exc
    missing = [k for k in result.missing_keys if not k.endswith(_IGNORABLE)]
    unexpected = [k for k in result.unexpected_keys if not k.endswith(_IGNORABLE)]
    if missing or unexpected:
        raise ExportError(
            f"{source}: weights do not match the {what}: "
            f"missing {missing[:5]}{' …' if len(missing) > 5 else ''}, "
            f"unexpected {unexpected[:5]}{' …' if len(unexpected) > 5 else ''}"
        )
