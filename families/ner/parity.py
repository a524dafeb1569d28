"""The NER parity gate: ONNX scores vs PyTorch, and served tags vs ``torchcrf.CRF.decode``.

Scores are the graph's output (CRF emissions, or log-softmax for softmax heads). The served decoder
(:class:`families.ner.decoding.WordDecoder`, constraints as the bundle says) runs on the ONNX
scores; pytorch-crf's own ``decode`` runs on the PyTorch scores with the same constrained start /
end / transition scores (zeros plus constraints for softmax heads). For ``cls+words`` both run over
``[CLS] + words`` and drop the first tag. Every sequence must agree, the scores within ``atol``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from numpy.typing import NDArray
from torchcrf import CRF

from export.errors import ParityError
from families.ner.crf import CrfParams
from families.ner.decoding import WordDecoder
from families.ner.model import Tagger
from service.bundle import ParityReport
from service.runtime.session import InferenceSession
from service.text.inputs import build_inputs
from service.text.tokenizer import TextTokenizer, first_subtokens

FloatArray = NDArray[np.float64]

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
    inputs: dict[str, NDArray[np.int64]]
    word_positions: list[NDArray[np.int64]]  # per row: token positions (in the input) of words


def _text_case(tokenizer: TextTokenizer, texts: tuple[str, ...], capacity: int, pad: int) -> _Case:
    encoded = tokenizer.encode_batch(list(texts))
    rows = [e.ids[:capacity] for e in encoded]
    offset = len(tokenizer.prefix_ids)
    positions = []
    for e in encoded:
        first = first_subtokens(e.word_ids[:capacity])
        positions.append(first + offset)
    inputs = build_inputs(rows, tokenizer.prefix_ids, tokenizer.suffix_ids, pad)
    return _Case("sample texts", inputs, positions)


def _random_case(
    tokenizer: TextTokenizer, lengths: list[int], vocab: int, pad: int, seed: int
) -> _Case:
    rng = np.random.default_rng(seed)
    rows = [rng.integers(0, vocab, size=n, dtype=np.int64) for n in lengths]
    offset = len(tokenizer.prefix_ids)
    positions = [np.arange(n) + offset for n in lengths]
    inputs = build_inputs(rows, tokenizer.prefix_ids, tokenizer.suffix_ids, pad)
    return _Case(f"random ids, lengths {lengths}", inputs, positions)


def torch_scores(tagger: Tagger, inputs: dict[str, NDArray[np.int64]]) -> FloatArray:
    with torch.no_grad():
        out = tagger.scores(*(torch.from_numpy(inputs[n]) for n in tagger.input_names))
    scores: FloatArray = out.double().numpy()
    return scores


def reference_crf(params: CrfParams) -> CRF:
    """pytorch-crf holding exactly the served (constrained) scores, in double precision."""
    crf = CRF(params.num_tags, batch_first=True).double()
    with torch.no_grad():
        crf.start_transitions.copy_(torch.from_numpy(params.start))
        crf.end_transitions.copy_(torch.from_numpy(params.end))
        crf.transitions.copy_(torch.from_numpy(params.transitions))
    return crf


def _tags_agree(
    decoder: WordDecoder, case: _Case, reference: FloatArray, onnx: FloatArray
) -> list[bool]:
    crf = reference_crf(decoder.crf)
    rows = [r for r, p in enumerate(case.word_positions) if len(p)]
    served = decoder.decode(
        [onnx[r, case.word_positions[r]] for r in rows],
        [onnx[r, 0] for r in rows],
        marginals=False,
    )
    agree = []
    for slot, r in enumerate(rows):
        words = reference[r, case.word_positions[r]]
        if decoder.lead:
            words = np.vstack([decoder.cls_row(reference[r, 0]), words])
        expected = crf.decode(torch.from_numpy(words[None]))[0][decoder.lead :]
        agree.append(served.word_tags(slot).tolist() == expected)
    return agree


def check_parity(
    tagger: Tagger,
    decoder: WordDecoder,
    session: InferenceSession,
    tokenizer: TextTokenizer,
    max_length: int,
    pad_id: int,
    atol: float,
    seed: int = 0,
) -> ParityReport:
    """Compare on sample texts and random ids up to ``max_length``; raise if out of tolerance."""
    cases = parity_cases(tokenizer, max_length, int(tagger.model.config.vocab_size), pad_id, seed)
    details: list[dict[str, float | int | str]] = []
    worst, agreements = 0.0, list[bool]()
    for case in cases:
        reference = torch_scores(tagger, case.inputs)
        onnx = session.run(case.inputs).astype(np.float64)
        mask = case.inputs["attention_mask"].astype(bool)
        diff = float(np.abs(reference - onnx)[mask].max())
        agree = _tags_agree(decoder, case, reference, onnx)
        details.append(
            {"case": case.name, "max_abs_diff": diff, "tag_agreement": float(np.mean(agree))}
        )
        worst, agreements = max(worst, diff), agreements + agree
    return gate(atol, worst, agreements, details, "score", "tag agreement")


def parity_cases(
    tokenizer: TextTokenizer, max_length: int, vocab: int, pad_id: int, seed: int
) -> list[_Case]:
    """The cases of every word-level parity gate (NER, span, joint): the sample texts, random
    ids of a few lengths up to the window, and one full window of random ids."""
    capacity = max_length - tokenizer.num_special_tokens
    lengths = sorted({1, 2, 17, min(64, capacity), capacity})
    return [
        _text_case(tokenizer, SAMPLE_TEXTS, capacity, pad_id),
        _random_case(tokenizer, lengths, vocab, pad_id, seed),
        _random_case(tokenizer, [capacity], vocab, pad_id, seed + 1),
    ]


def gate(
    atol: float,
    worst: float,
    agreements: list[bool],
    details: list[dict[str, float | int | str]],
    scores: str,
    agreement: str,
) -> ParityReport:
    """The gate's report; raises when the worst ``scores`` difference is over ``atol`` or a
    sequence disagrees (``agreement`` names what agreed in the message)."""
    report = ParityReport(
        atol=atol,
        max_abs_diff=worst,
        cases=len(agreements),
        tag_agreement=float(np.mean(agreements)),
        details=details,
    )
    if worst > atol or report.tag_agreement != 1.0:
        raise ParityError(
            f"parity gate failed: max abs {scores} diff {worst:.3g} (tolerance {atol:g}), "
            f"{agreement} {report.tag_agreement:.4f} (required 1.0); details: {details}"
        )
    return report
