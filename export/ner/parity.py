"""The NER parity gate: ONNX emissions vs PyTorch, and served tags vs ``torchcrf.CRF.decode``.

The served decoder (numpy Viterbi over first-sub-token emissions, constraints off) runs on the ONNX
emissions; pytorch-crf's own ``decode`` runs on the PyTorch emissions. Both must agree on every
sequence, and the emissions must agree within ``atol``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from export.errors import ParityError
from export.ner.model import BertCrf
from service.bundle import ParityReport
from service.ner.crf import CrfParams, viterbi_decode
from service.runtime.session import InferenceSession
from service.text.inputs import build_inputs
from service.text.tokenizer import TextTokenizer, words_of

SAMPLE_TEXTS = (
    "tushar se 2 misal mangwao",
    "inayat cafe se pizza chahiye, extra spicy",
    "Angela Merkel met Emmanuel Macron in Paris on Tuesday.",
    "Врховни суд Србије донео је пресуду у Београду.",
    "Vrhovni sud Srbije doneo je presudu u Beogradu.",
    "Đặt cho tôi 2 bánh mì ở Hà Nội",
    "मुझे मुंबई में दो समोसे चाहिए",
    "東京タワーの近くでラーメンを食べたい",
    "order 3 paneer tikka 🍕 from sharma sweets to andheri west!!",
    "  leading and   multiple\tspaces\nnewline  ",
    "a",
)


@dataclass
class _Case:
    name: str
    inputs: dict[str, np.ndarray]
    word_positions: list[np.ndarray]  # per row: token positions (in the input) of word starts


def _text_case(tokenizer: TextTokenizer, texts: tuple[str, ...], capacity: int) -> _Case:
    encoded = tokenizer.encode_batch(list(texts))
    rows = [e.ids[:capacity] for e in encoded]
    offset = len(tokenizer.prefix_ids)
    positions = []
    for e in encoded:
        first = words_of(e).first_token
        positions.append(first[first < capacity] + offset)
    inputs = build_inputs(rows, tokenizer.prefix_ids, tokenizer.suffix_ids, 0)
    return _Case("sample texts", inputs, positions)


def _random_case(tokenizer: TextTokenizer, lengths: list[int], vocab: int, seed: int) -> _Case:
    rng = np.random.default_rng(seed)
    rows = [rng.integers(0, vocab, size=n, dtype=np.int64) for n in lengths]
    offset = len(tokenizer.prefix_ids)
    positions = [np.arange(n) + offset for n in lengths]
    inputs = build_inputs(rows, tokenizer.prefix_ids, tokenizer.suffix_ids, 0)
    return _Case(f"random ids, lengths {lengths}", inputs, positions)


def _torch_emissions(model: BertCrf, inputs: dict[str, np.ndarray], names: list[str]) -> np.ndarray:
    with torch.no_grad():
        out = model.emitter(**{n: torch.from_numpy(inputs[n]) for n in names})
    emissions: np.ndarray = out.logits.numpy()
    return emissions


def _tags_agree(model: BertCrf, case: _Case, reference: np.ndarray, onnx: np.ndarray) -> list[bool]:
    crf = model.crf
    params = CrfParams(
        crf.start_transitions.detach().double().numpy(),
        crf.end_transitions.detach().double().numpy(),
        crf.transitions.detach().double().numpy(),
    )
    agree = []
    for row, positions in enumerate(case.word_positions):
        if len(positions) == 0:
            continue
        ref = torch.from_numpy(reference[row, positions][None]).float()
        expected = crf.decode(ref)[0]
        served = viterbi_decode(
            onnx[row, positions][None].astype(np.float64), np.asarray([len(positions)]), params
        )
        agree.append(list(served[0]) == expected)
    return agree


def check_parity(
    model: BertCrf,
    session: InferenceSession,
    tokenizer: TextTokenizer,
    max_length: int,
    atol: float,
    seed: int = 0,
) -> ParityReport:
    """Compare on sample texts and random ids up to ``max_length``; raise if out of tolerance."""
    capacity = max_length - tokenizer.num_special_tokens
    vocab = int(model.emitter.config.vocab_size)
    lengths = sorted({1, 2, 17, min(64, capacity), capacity})
    cases = [
        _text_case(tokenizer, SAMPLE_TEXTS, capacity),
        _random_case(tokenizer, lengths, vocab, seed),
        _random_case(tokenizer, [capacity], vocab, seed + 1),
    ]
    details: list[dict[str, float | int | str]] = []
    worst, agreements = 0.0, list[bool]()
    for case in cases:
        reference = _torch_emissions(model, case.inputs, session.input_names)
        onnx = session.run(case.inputs)
        mask = case.inputs["attention_mask"].astype(bool)
        diff = float(np.abs(reference - onnx)[mask].max())
        agree = _tags_agree(model, case, reference, onnx)
        details.append(
            {"case": case.name, "max_abs_diff": diff, "tag_agreement": float(np.mean(agree))}
        )
        worst, agreements = max(worst, diff), agreements + agree
    report = ParityReport(
        atol=atol,
        max_abs_diff=worst,
        cases=len(agreements),
        tag_agreement=float(np.mean(agreements)),
        details=details,
    )
    if worst > atol or report.tag_agreement != 1.0:
        raise ParityError(
            f"parity gate failed: max abs emission diff {worst:.3g} (tolerance {atol:g}), "
            f"tag agreement {report.tag_agreement:.4f} (required 1.0); details: {details}"
        )
    return report
