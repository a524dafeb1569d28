"""The span parity gate: ONNX probabilities vs PyTorch, and served spans vs a reference decode.

The served decoder (:func:`families.span.decoding.decode_spans`, numpy) runs on the ONNX graph's
word probabilities; :func:`reference_spans`, a direct transcription of the rule in torch (a loop
over every opening word and every end after it), runs on the PyTorch model's. Every sequence must
give the same spans (type, first word, last word), the probabilities and span scores within
``atol``. The INT8 gate (:func:`span_agreement`) counts agreeing threshold decisions.
"""

from __future__ import annotations

import numpy as np
import torch
from numpy.typing import NDArray

from export.variants.gate import Agreement
from families.ner.parity import SAMPLE_TEXTS, _Case, gate, parity_cases
from families.span.decoding import SpanRule, decode_spans
from families.span.model import SpanModel
from service.bundle import ParityReport
from service.runtime.batch_loop import run_rows
from service.runtime.session import InferenceSession
from service.text.tokenizer import TextTokenizer, first_subtokens

FloatArray = NDArray[np.float64]
Found = list[tuple[int, int, int, float]]  # type, first word, last word, score

__all__ = ["SAMPLE_TEXTS", "check_parity", "reference_spans", "span_agreement", "torch_probs"]


def torch_probs(model: SpanModel, inputs: dict[str, NDArray[np.int64]]) -> torch.Tensor:
    with torch.no_grad():
        out: torch.Tensor = model.scores(*(torch.from_numpy(inputs[n]) for n in model.input_names))
    return out.double()


def reference_spans(probs: torch.Tensor, rule: SpanRule) -> Found:
    """The decoding rule written out plainly on a ``[words, 3 * types]`` tensor."""
    types, words = rule.types, int(probs.shape[0])
    found = []
    for t in range(types):
        start, end, inside = probs[:, t], probs[:, types + t], probs[:, 2 * types + t]
        covered = -1
        for i in range(words):
            if start[i] < rule.start[t] or (not rule.nested and i <= covered):
                continue
            for j in range(i, words):
                if inside[j] < rule.inside[t]:
                    break
                if end[j] >= rule.end[t]:
                    score = (start[i] * end[j] * inside[i : j + 1].mean()) ** (1 / 3)
                    found.append((t, i, j, float(score)))
                    covered = max(covered, j)
                    break
    return sorted(found, key=lambda s: (s[1], s[2], s[0]))


def served_spans(probs: FloatArray, rule: SpanRule) -> Found:
    return [(s.label, s.first, s.last, s.score) for s in decode_spans(probs, rule)]


def _spans_agree(found: Found, expected: Found, atol: float) -> bool:
    same = [f[:3] for f in found] == [e[:3] for e in expected]
    return same and all(abs(f[3] - e[3]) <= atol for f, e in zip(found, expected, strict=True))


def _case_figures(
    case: _Case, model: SpanModel, session: InferenceSession, rule: SpanRule, atol: float
) -> tuple[float, list[bool], int]:
    reference = torch_probs(model, case.inputs)
    onnx = session.run(case.inputs).astype(np.float64)
    mask = case.inputs["attention_mask"].astype(bool)
    diff = float(np.abs(reference.numpy() - onnx)[mask].max())
    agree, spans = [], 0
    for row, positions in enumerate(case.word_positions):
        expected = reference_spans(reference[row, torch.from_numpy(positions)], rule)
        found = served_spans(onnx[row, positions], rule)
        agree.append(_spans_agree(found, expected, atol))
        spans += len(expected)
    return diff, agree, spans


def check_parity(
    model: SpanModel,
    rule: SpanRule,
    session: InferenceSession,
    tokenizer: TextTokenizer,
    max_length: int,
    pad_id: int,
    atol: float,
    seed: int = 0,
) -> ParityReport:
    """Compare on sample texts and random ids up to ``max_length``; raise if out of tolerance."""
    vocab = int(model.encoder.config.vocab_size)
    cases = parity_cases(tokenizer, max_length, vocab, pad_id, seed)
    details: list[dict[str, float | int | str]] = []
    worst, agreements = 0.0, list[bool]()
    for case in cases:
        diff, agree, spans = _case_figures(case, model, session, rule, atol)
        details.append(
            {
                "case": case.name,
                "max_abs_diff": diff,
                "span_agreement": float(np.mean(agree)),
                "reference_spans": spans,
            }
        )
        worst, agreements = max(worst, diff), agreements + agree
    return gate(atol, worst, agreements, details, "probability", "sequences with identical spans")


def span_agreement(
    fp32: InferenceSession,
    variant: InferenceSession,
    tokenizer: TextTokenizer,
    rule: SpanRule,
    texts: list[str],
    capacity: int,
    pad_id: int = 0,
) -> Agreement:
    """Agreement of (word, type, start/end/inside) threshold decisions, the worse of batch 1
    and 32; ``exact_match`` counts texts decoded to identical spans."""
    encoded = [e for e in tokenizer.encode_batch(texts) if len(e)]
    rows = [e.ids[:capacity] for e in encoded]
    offset = len(tokenizer.prefix_ids)
    positions = [first_subtokens(e.word_ids[:capacity]) + offset for e in encoded]
    cuts = np.concatenate([rule.start, rule.end, rule.inside])[None, :]
    results, worst = [], 0.0
    for batch_size in (1, 32):
        ref = run_rows(fp32, rows, tokenizer, pad_id, batch_size)
        got = run_rows(variant, rows, tokenizer, pad_id, batch_size)
        agree = decisions = same = 0
        for a, b, where, row in zip(ref, got, positions, rows, strict=True):
            content = slice(offset, offset + len(row))
            worst = max(worst, float(np.abs(a[content] - b[content]).max(initial=0.0)))
            if not len(where):
                same += 1
                continue
            da, db = a[where] >= cuts, b[where] >= cuts
            agree, decisions = agree + int((da == db).sum()), decisions + da.size
            spans_a = [s[:3] for s in served_spans(a[where], rule)]
            same += spans_a == [s[:3] for s in served_spans(b[where], rule)]
        results.append((agree / max(decisions, 1), same / max(len(rows), 1)))
    return Agreement(
        min(r[0] for r in results),
        min(r[1] for r in results),
        worst,
        len(rows),
        "(word, type, start/end/inside) decisions (worst of batch 1 and 32)",
    )
