"""torch → ONNX for encoder models with dynamic batch and sequence axes."""

from __future__ import annotations

import warnings
from pathlib import Path

import torch
from torch import nn

OPSET = 17


class LogitsOnly(nn.Module):
    """Expose a transformers model as ``f(*inputs) -> logits`` with positional inputs."""

    def __init__(self, model: nn.Module, input_names: list[str]) -> None:
        super().__init__()
        self.model = model
        self.input_names = input_names

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        out = self.model(**dict(zip(self.input_names, inputs, strict=True)))
        logits: torch.Tensor = out.logits
        return logits


def export_logits(
    model: nn.Module,
    dummy: dict[str, torch.Tensor],
    path: Path,
    output_name: str,
    per_token: bool,
    opset: int = OPSET,
) -> None:
    """Trace with the TorchScript exporter; every input has dynamic batch and sequence axes."""
    names = list(dummy)
    axes: dict[str, dict[int, str]] = {n: {0: "batch", 1: "sequence"} for n in names}
    axes[output_name] = {0: "batch", 1: "sequence"} if per_token else {0: "batch"}
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # tracer chatter about python-int shapes of the dummy
        torch.onnx.export(
            LogitsOnly(model, names).eval(),
            tuple(dummy[n] for n in names),
            str(path),
            input_names=names,
            output_names=[output_name],
            dynamic_axes=axes,
            opset_version=opset,
            dynamo=False,
        )
