"""The self-check sample a bundle carries: a few texts and the shipped graph's outputs here.

The service re-runs them at start-up (``service.selfcheck``) and refuses to serve outputs that
moved beyond ``atol``. The tolerance is the export's own: the fp32 parity tolerance against
PyTorch, and for INT8 graphs a quarter of the quantization error the accuracy gate accepted (an
INT8 kernel that saturates on another CPU moves outputs by about as much as quantization itself,
so it is caught; exact integer kernels on another CPU differ by rounding only).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from service.bundle import SelfCheck
from service.runtime.cpu_features import current_cpu
from service.runtime.cpus import available_cpus
from service.runtime.session import OnnxSession
from service.selfcheck import sample_outputs
from service.text.inputs import build_inputs
from service.text.tokenizer import TextTokenizer

# Short, mixed scripts and lengths: they fit one window of every bundle, and cost milliseconds.
SELF_CHECK_TEXTS = (
    "order 2 masala dosa and a filter coffee from saravana bhavan",
    "Priya Sharma wants paneer butter masala delivered to Koramangala at 8 pm",
    "tushar se 2 misal mangwao",
    "Sud u Beogradu je odbio žalbu Petra Petrovića 12. marta 2021.",
    "Апелляционный суд Москвы отменил решение",
    "Đặt 3 ly cà phê sữa đá đến 12 Nguyễn Huệ",
    "東京地方裁判所は請求を棄却した 🙂",
    "On appeal from the order granting the motion to dismiss, we reverse and remand for "
    "further proceedings consistent with this opinion.",
)
FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]


@dataclass(frozen=True)
class SampleSpec:
    """How the service feeds a bundle's graph: enough to run the sample as it will."""

    tokenizer: Path
    output: str
    max_length: int
    pad_id: int

    def feeds(self, texts: Sequence[str] = SELF_CHECK_TEXTS) -> list[dict[str, IntArray]]:
        """``texts`` (the sample by default) as model inputs, one text per call, each cut to one
        window: no padding (as the self-check runs them, and as calibration needs)."""
        tokenizer = TextTokenizer(self.tokenizer)
        capacity = self.max_length - tokenizer.num_special_tokens
        return [
            build_inputs(
                [e.ids[:capacity]], tokenizer.prefix_ids, tokenizer.suffix_ids, self.pad_id
            )
            for e in tokenizer.encode_batch(list(texts))
            if len(e.ids)
        ]

    def outputs(self, graph: Path) -> list[FloatArray]:
        session = OnnxSession(graph, self.output, available_cpus())
        return sample_outputs(
            session, TextTokenizer(self.tokenizer), SELF_CHECK_TEXTS, self.max_length, self.pad_id
        )


def build_selfcheck(
    shipped: list[FloatArray], fp32: list[FloatArray] | None, parity_atol: float
) -> SelfCheck:
    """The sample with the shipped graph's outputs; ``fp32``: the graph it was quantized from."""
    atol = parity_atol
    if fp32 is not None:
        quantization_error = max(
            float(np.abs(a - b).max(initial=0.0)) for a, b in zip(shipped, fp32, strict=True)
        )
        atol = max(parity_atol, 0.25 * quantization_error)
    return SelfCheck(
        texts=list(SELF_CHECK_TEXTS),
        outputs=[o.round(7).tolist() for o in shipped],
        atol=atol,
        validated_on=current_cpu(),
    )
