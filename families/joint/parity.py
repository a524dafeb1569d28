"""The joint parity and INT8 gates: every head of the ONNX graph against PyTorch / fp32.

Token head: scores within ``atol`` and tags identical to ``torchcrf.CRF.decode`` on the PyTorch
scores (the NER gate's own cases and comparison, :mod:`families.ner.parity`). Sequence heads: served
probabilities (sigmoid / softmax) within ``atol`` and the same decisions (argmax; multi-label: at
0.5), on the same inputs, read from the packed output the service reads.
"""

from __future__ import annotations

import numpy as np
import torch
from numpy.typing import NDArray

from export.errors import ParityError
from export.variants.gate import Agreement
from families.classify.runtime import probabilities_of
from families.joint.model import JointModel
from families.ner.decoding import WordDecoder
from families.ner.parity import SAMPLE_TEXTS, _random_case, _tags_agree, _text_case
from service.bundle import ParityReport
from service.runtime.batch_loop import run_rows
from service.runtime.session import InferenceSession
from service.text.tokenizer import TextTokenizer, first_subtokens

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]


def torch_packed(model: JointModel, inputs: dict[str, NDArray[np.int64]]) -> FloatArray:
    with torch.no_grad():
        out = model.module(*(torch.from_numpy(inputs[n]) for n in model.input_names))
    packed: FloatArray = out[-1].double().numpy()
    return packed


def columns(model: JointModel) -> dict[str, tuple[int, int]]:
    spans, at = {model.token_name: (0, len(model.labels))}, len(model.labels)
    for h in model.heads:
        spans[h.name] = (at, at + len(h.labels))
        at += len(h.labels)
    return spans


def decisions(probs: FloatArray, kind: str) -> NDArray[np.bool_]:
    """Per row: the argmax (single-label) or every class at or above 0.5 (multi-label)."""
    if kind == "single-label":
        chosen = np.zeros(probs.shape, dtype=bool)
        chosen[np.arange(len(probs)), probs.argmax(axis=1)] = True
        return chosen
    return probs >= 0.5


def check_parity(
    model: JointModel,
    decoder: WordDecoder,
    session: InferenceSession,
    tokenizer: TextTokenizer,
    max_length: int,
    pad_id: int,
    atol: float,
    seed: int = 0,
) -> ParityReport:
    capacity = max_length - tokenizer.num_special_tokens
    vocab = int(model.encoder.config.vocab_size)
    lengths = sorted({1, 2, 17, min(64, capacity), capacity})
    cases = [
        _text_case(tokenizer, SAMPLE_TEXTS, capacity, pad_id),
        _random_case(tokenizer, lengths, vocab, pad_id, seed),
        _random_case(tokenizer, [capacity], vocab, pad_id, seed + 1),
    ]
    spans = columns(model)
    k = len(model.labels)
    details: list[dict[str, float | int | str]] = []
    worst, tag_agree, head_agree = 0.0, list[bool](), list[bool]()
    for case in cases:
        reference = torch_packed(model, case.inputs)
        onnx = session.run(case.inputs).astype(np.float64)
        live = case.inputs["attention_mask"].astype(bool)
        token_diff = float(np.abs(reference[..., :k] - onnx[..., :k])[live].max())
        agree = _tags_agree(decoder, case, reference[..., :k], onnx[..., :k])
        row: dict[str, float | int | str] = {
            "case": case.name,
            f"{model.token_name}_max_abs_diff": token_diff,
            "tag_agreement": float(np.mean(agree)),
        }
        case_worst = token_diff
        for head in model.heads:
            first, last = spans[head.name]
            expected = probabilities_of(reference[:, 0, first:last], head.kind)
            got = probabilities_of(onnx[:, 0, first:last], head.kind)
            diff = float(np.abs(expected - got).max())
            near = np.abs(expected - (0.5 if head.kind == "multi-label" else 0.0)) < atol
            same = (decisions(expected, head.kind) == decisions(got, head.kind)) | near
            head_agree += same.all(axis=1).tolist()
            row[f"{head.name}_max_abs_diff"] = diff
            case_worst = max(case_worst, diff)
        details.append(row)
        worst, tag_agree = max(worst, case_worst), tag_agree + agree
    report = ParityReport(
        atol=atol,
        max_abs_diff=worst,
        cases=len(tag_agree),
        tag_agreement=float(np.mean(tag_agree)),
        details=details,
    )
    heads_rate = float(np.mean(head_agree))
    if worst > atol or report.tag_agreement != 1.0 or heads_rate != 1.0:
        raise ParityError(
            f"parity gate failed: max abs diff over every head {worst:.3g} (tolerance {atol:g}), "
            f"tag agreement {report.tag_agreement:.4f}, sequence-head decision agreement "
            f"{heads_rate:.4f} (both required 1.0); details: {details}"
        )
    return report


def joint_agreement(
    model: JointModel,
    decoder: WordDecoder,
    fp32: InferenceSession,
    variant: InferenceSession,
    tokenizer: TextTokenizer,
    texts: list[str],
    capacity: int,
    pad_id: int = 0,
) -> Agreement:
    """Decisions of every head agreeing with fp32: word tags plus each sequence head's decisions
    (argmax, or every class at 0.5), worst of batch 1 and 32; texts cut to one window."""
    encoded = [e for e in tokenizer.encode_batch(texts) if len(e)]
    rows = [e.ids[:capacity] for e in encoded]
    offset, k = len(tokenizer.prefix_ids), len(model.labels)
    positions = [first_subtokens(e.word_ids[:capacity]) + offset for e in encoded]
    live = [i for i, p in enumerate(positions) if len(p)]
    spans = columns(model)
    results, worst = [], 0.0
    for batch_size in (1, 32):
        outs = [run_rows(s, rows, tokenizer, pad_id, batch_size) for s in (fp32, variant)]
        for a, b, r in zip(outs[0], outs[1], rows, strict=True):
            worst = max(
                worst,
                float(np.abs(a[offset : offset + len(r)] - b[offset : offset + len(r)]).max()),
            )
        tags = [
            decoder.decode(
                [o[i][positions[i], :k] for i in live], [o[i][0, :k] for i in live], False
            )
            for o in outs
        ]
        agree = total = 0
        same = np.ones(len(rows), dtype=bool)
        for slot, i in enumerate(live):
            x, y = tags[0].word_tags(slot), tags[1].word_tags(slot)
            agree, total = agree + int((x == y).sum()), total + len(x)
            same[i] &= bool((x == y).all())
        for head in model.heads:
            first, last = spans[head.name]
            chosen = [
                decisions(
                    probabilities_of(np.stack([o[0, first:last] for o in out]), head.kind),
                    head.kind,
                )
                for out in outs
            ]
            equal = chosen[0] == chosen[1]
            unit = equal.all(axis=1) if head.kind == "single-label" else equal
            agree, total = agree + int(unit.sum()), total + unit.size
            same &= equal.all(axis=1)
        results.append((agree / max(total, 1), float(same.mean()) if len(rows) else 1.0))
    return Agreement(
        min(r[0] for r in results),
        min(r[1] for r in results),
        worst,
        len(rows),
        "decisions of every head: word tags + sequence-head classes (worst of batch 1 and 32)",
    )
