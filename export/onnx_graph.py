"""torch → ONNX for encoder models (per-token or per-sequence outputs) with dynamic batch and
sequence axes."""

from __future__ import annotations

import warnings
from pathlib import Path

import torch
from torch import nn

OPSET = 17


def dummy_inputs(names: list[str], vocab: int) -> dict[str, torch.Tensor]:
    """Two rows of 16 tokens, the second padded from position 9: traces the masking path."""
    generator = torch.Generator().manual_seed(0)
    ids = torch.randint(min(5, vocab - 1), vocab, (2, 16), generator=generator)
    mask = torch.ones(2, 16, dtype=torch.long)
    mask[1, 9:] = 0
    values = {"input_ids": ids, "attention_mask": mask, "token_type_ids": torch.zeros_like(ids)}
    return {n: values[n] for n in names}


def export_scores(
    module: nn.Module,
    names: list[str],
    path: Path,
    output_name: str,
    vocab: int,
    output_axes: dict[int, str] | None = None,
    opset: int = OPSET,
) -> None:
    """Trace ``module(*inputs) -> [batch, sequence, K]`` (or ``[batch, K]`` with ``output_axes``
    ``{0: "batch"}``) with the TorchScript exporter."""
    dummy = dummy_inputs(names, vocab)
    axes: dict[str, dict[int, str]] = {n: {0: "batch", 1: "sequence"} for n in names}
    axes[output_name] = output_axes or {0: "batch", 1: "sequence"}
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # tracer chatter about python-int shapes of the dummy
        torch.onnx.export(
            module.eval(),
            tuple(dummy[n] for n in names),
            str(path),
            input_names=names,
            output_names=[output_name],
            dynamic_axes=axes,
            opset_version=opset,
            dynamo=False,
        )
