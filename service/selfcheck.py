"""Does this bundle answer here as it did where it was exported? Checked before serving.

The export stores a few texts with the shipped graph's raw outputs on its own CPU (``selfcheck`` in
``bundle.json``). At start-up the service runs the same texts through the same graph on the CPU it
is on: a different CPU (INT8 kernels without VNNI), an ONNX Runtime or tokenizers upgrade, or a
graph that does not match its manifest shows up as outputs beyond the stored tolerance, and the
model stays unready with the reason in ``/readyz``. Bundles whose INT8 format needs a CPU feature
this host lacks are refused before anything runs.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import numpy as np
from numpy.typing import NDArray
from pydantic import BaseModel, ConfigDict, Field

from service.bundle import ManifestBase, SelfCheck
from service.runtime.cpu_features import CpuInfo, current_cpu
from service.runtime.session import InferenceSession
from service.text.inputs import build_inputs
from service.text.tokenizer import TextTokenizer

FloatArray = NDArray[np.float64]


class SelfCheckError(RuntimeError):
    """The bundle cannot be trusted on this host: a missing CPU feature or outputs that differ."""


class SelfCheckReport(BaseModel):
    """What ``/v1/models`` shows of the start-up self-check."""

    model_config = ConfigDict(frozen=True)

    status: Literal["passed", "absent"] = Field(
        description="absent: the bundle predates self-check samples, or its family runs no ONNX "
        "graph (no stored sample to re-run)"
    )
    cpu: CpuInfo
    texts: int = 0
    max_abs_diff: float | None = None
    atol: float | None = None

    def summary(self, name: str) -> str:
        if self.status == "absent":
            return f"{name}: no self-check sample (the bundle predates it)"
        return (
            f"{name}: self-check passed on {self.cpu.describe()} (max abs diff "
            f"{self.max_abs_diff:.2g}, tolerance {self.atol:.2g}, {self.texts} texts)"
        )


def sample_outputs(
    session: InferenceSession,
    tokenizer: TextTokenizer,
    texts: Sequence[str],
    max_length: int,
    pad_id: int,
) -> list[FloatArray]:
    """Raw outputs per text, each text alone (dynamic INT8 scales depend on the batch).

    Token outputs ([batch, tokens, k]) are cut to the text's content tokens; sequence outputs
    ([batch, k]) give one row. Texts are cut to one window.
    """
    capacity = max_length - tokenizer.num_special_tokens
    offset = len(tokenizer.prefix_ids)
    outputs = []
    for encoded in tokenizer.encode_batch(list(texts)):
        row = encoded.ids[:capacity]
        scores = session.run(
            build_inputs([row], tokenizer.prefix_ids, tokenizer.suffix_ids, pad_id)
        )
        out = scores[0, offset : offset + len(row)] if scores.ndim == 3 else scores[:1]
        outputs.append(np.asarray(out, dtype=np.float64))
    return outputs


def check_cpu_features(manifest: ManifestBase, cpu: CpuInfo | None = None) -> None:
    """Refuse a graph whose INT8 format is exact only with a feature this CPU does not have."""
    cpu = cpu or current_cpu()
    needed = manifest.variant.required_cpu_features() if manifest.variant else []
    if not cpu.has_any(needed):
        fmt = manifest.variant.int8_format if manifest.variant else None
        raise SelfCheckError(
            f"bundle {manifest.name}: its INT8 graph ({fmt or 'u8s8, exported before formats were'}"
            f" recorded) computes exactly only on CPUs with {' or '.join(needed)}, and this CPU "
            f"({cpu.describe()}) has none of them; re-export it with --int8-format u8s8-reduced "
            "(exact everywhere) or serve the fp32 bundle"
        )


def compare(check: SelfCheck, outputs: list[FloatArray]) -> float:
    """Max abs difference between stored and current outputs (inf if shapes differ)."""
    worst = 0.0
    for stored, current in zip(check.outputs, outputs, strict=True):
        expected = np.asarray(stored, dtype=np.float64)
        if expected.shape != current.shape:
            return float("inf")
        if expected.size:
            worst = max(worst, float(np.abs(expected - current).max()))
    return worst


def run_selfcheck(
    manifest: ManifestBase, bundle_dir: Path, session: InferenceSession
) -> SelfCheckReport:
    """Raise :class:`SelfCheckError` unless the bundle reproduces its stored sample here."""
    check_cpu_features(manifest)
    return check_sample(manifest, bundle_dir, session, manifest.selfcheck)


def check_sample(
    manifest: ManifestBase,
    bundle_dir: Path,
    session: InferenceSession,
    check: SelfCheck | None,
    graph: str | None = None,
) -> SelfCheckReport:
    """Re-run ``check`` (the sample stored with the graph ``session`` runs; ``graph``: its file
    when the bundle has several) and raise :class:`SelfCheckError` beyond its tolerance."""
    cpu = current_cpu()
    if check is None:
        return SelfCheckReport(status="absent", cpu=cpu)
    tokenizer = TextTokenizer(bundle_dir / manifest.tokenizer.file)
    outputs = sample_outputs(
        session,
        tokenizer,
        check.texts,
        manifest.tokenizer.max_length,
        manifest.tokenizer.pad_token_id,
    )
    worst = compare(check, outputs)
    if not worst <= check.atol:  # also catches NaN
        which = f" ({graph})" if graph else ""
        raise SelfCheckError(
            f"bundle {manifest.name}{which}: self-check failed on this CPU ({cpu.describe()}): "
            f"outputs for the {len(check.texts)} stored sample texts differ from the export's by "
            f"up to {worst:.3g} (tolerance {check.atol:.3g}; exported on "
            f"{check.validated_on.describe()}); not serving it"
        )
    return SelfCheckReport(
        status="passed", cpu=cpu, texts=len(check.texts), max_abs_diff=worst, atol=check.atol
    )
