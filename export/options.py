"""Typed export options: what every family shares; each family's model adds its own fields.

The command line (:mod:`export.cli`) is generated from these models (:mod:`export.cli_options`)
and the Python API (:func:`export.api.export_bundle`) takes them: each option is written once,
here or in its family's ``families/<name>/export.py``.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from pydantic import BaseModel, ConfigDict, Field

from export.variants.request import VariantRequest


class ExportOptions(BaseModel):
    """The checkpoint, the bundle identity, the windows and the graph variant of one export.

    A family's subclass sets ``atol`` (its default and meaning), the class attributes below, and
    adds its own fields.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    max_length_cap: ClassVar[int]  # default window: min(model limit, this)
    stride_divisor: ClassVar[int]  # default stride: window / this
    agreement_unit: ClassVar[str]  # what the INT8 gate counts (--min-agreement's help)

    checkpoint: Path = Field(
        description="model directory (config.json, tokenizer, weights) or training .pt file"
    )
    out: Path = Field(description="bundle directory to create")
    base: Path | None = Field(
        None, description="config + tokenizer directory (for a .pt checkpoint)"
    )
    labels: Path | None = Field(None, description="label list, one per line (for a .pt checkpoint)")
    name: str | None = Field(None, description="bundle name (default: the --out directory name)")
    version: str = Field("1", description="bundle version string")
    force: bool = Field(False, description="replace an existing bundle directory")
    trust_checkpoint: bool = Field(
        False, description="unpickle a .pt file fully (only for files you trust)"
    )
    max_length: int | None = Field(
        None,
        description="tokens per window incl. special tokens "
        "(default: min(model max, ${max_length_cap}))",
    )
    stride: int | None = Field(
        None,
        description="tokens shared by consecutive windows "
        "(default: max length / ${stride_divisor})",
    )
    atol: float
    variant: VariantRequest = Field(default_factory=VariantRequest)
