"""Reading the two checkpoint forms the training code produces.

a. a directory with ``config.json`` (``id2label`` = the labels), tokenizer files and a weights
   file (``model.safetensors`` or ``pytorch_model.bin``);
b. a training checkpoint ``.pt`` holding ``{"model_state_dict": ...}`` (optimizer state and metrics
   are ignored), with ``--base DIR`` for config + tokenizer and ``--labels FILE`` for the labels.
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from transformers import AutoConfig, AutoTokenizer, PretrainedConfig, PreTrainedTokenizerFast

from export.errors import ExportError

StateDict = dict[str, torch.Tensor]


@dataclass
class RawCheckpoint:
    config: PretrainedConfig
    tokenizer: PreTrainedTokenizerFast
    labels: list[str]
    state_dict: StateDict
    source: str


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


def load_checkpoint(
    checkpoint: Path,
    base: Path | None = None,
    labels_file: Path | None = None,
    trust_checkpoint: bool = False,
) -> RawCheckpoint:
    """Read either checkpoint form into config, tokenizer, labels and a raw state dict."""
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
            f"{checkpoint} is a training checkpoint file: pass --base DIR (encoder config and "
            "tokenizer) and --labels FILE (one label per line)"
        )
    payload = _torch_load(checkpoint, trust=trust_checkpoint)
    if not isinstance(payload, dict) or not isinstance(payload.get("model_state_dict"), dict):
        raise ExportError(f"{checkpoint}: expected a dict with a 'model_state_dict' entry")
    return RawCheckpoint(
        _config(base),
        _tokenizer(base),
        read_labels_file(labels_file),
        payload["model_state_dict"],
        str(checkpoint),
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
