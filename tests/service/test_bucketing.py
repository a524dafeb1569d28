"""Length buckets: the cheapest cut of a merged batch, and answers that do not depend on it."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import REGISTRY

from families.ner.runtime import NerPipeline
from service.bundle import read_manifest
from service.runtime import batch_loop
from service.runtime.batch_loop import run_rows
from service.runtime.session import MeteredSession, OnnxSession
from service.text.inputs import bucketed_batches, padding
from service.text.tokenizer import TextTokenizer

ONE_CALL = 10**9


def _brute_force_cost(lengths: list[int], size: int, budget: int | None, overhead: int) -> float:
    """The cheapest cost over every cut of the sorted rows into consecutive calls."""
    ordered = sorted(lengths)
    best = float("inf")
    for cuts in itertools.product([False, True], repeat=len(ordered) - 1):
        calls, start = [], 0
        for i, cut in enumerate(cuts, start=1):
            if cut:
                calls.append(ordered[start:i])
                start = i
        calls.append(ordered[start:])
        if any(len(c) > size or (len(c) > 1 and budget and len(c) * c[-1] > budget) for c in calls):
            continue
        best = min(best, sum(overhead + len(c) * c[-1] for c in calls))
    return best


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.integers(1, 60), min_size=1, max_size=9),
    st.integers(1, 9),
    st.sampled_from([None, 40, 120]),
    st.sampled_from([0, 4, 16, 64]),
)
def test_the_plan_is_the_cheapest_cut_within_the_budgets(
    lengths: list[int], size: int, budget: int | None, overhead: int
) -> None:
    plan = bucketed_batches(lengths, size, budget, overhead)
    assert sorted(i for b in plan for i in b) == list(range(len(lengths)))
    for b in plan:
        assert 1 <= len(b) <= size
        assert len(b) == 1 or budget is None or len(b) * max(lengths[i] for i in b) <= budget
    cost = sum(overhead + len(b) * max(lengths[i] for i in b) for b in plan)
    assert cost == _brute_force_cost(lengths, size, budget, overhead)


def test_buckets_cut_the_padding_of_spread_lengths() -> None:
    rng = np.random.default_rng(0)
    lengths = rng.integers(8, 41, size=32).tolist()
    one = bucketed_batches(lengths, 32, None, ONE_CALL)
    assert len(one) == 1
    useful, padded_one = padding(lengths, one)
    assert padded_one / (useful + padded_one) > 0.25  # one call pads a third or more
    bucketed = bucketed_batches(lengths, 32, None)
    _, padded = padding(lengths, bucketed)
    assert padded / (useful + padded) < 0.10
    assert len(bucketed) < 8  # and it does not degenerate into one call per row


class _Recording:
    """A real session that remembers the shape of every call."""

    def __init__(self, session: OnnxSession) -> None:
        self.session, self.shapes = session, []

    @property
    def input_names(self) -> list[str]:
        return self.session.input_names

    @property
    def provider(self) -> str:
        return self.session.provider

    def run(self, inputs):  # type: ignore[no-untyped-def]
        self.shapes.append(inputs["input_ids"].shape)
        return self.session.run(inputs)


def _rows(tokenizer: TextTokenizer, count: int) -> list[np.ndarray]:
    rng = np.random.default_rng(1)
    texts = [" ".join(["word"] * int(n)) for n in rng.integers(3, 40, size=count)]
    return [e.ids for e in tokenizer.encode_batch(texts)]


def test_bucketed_and_one_call_outputs_are_equal(tiny_bundle: Path) -> None:
    manifest = read_manifest(tiny_bundle)
    session = _Recording(OnnxSession(tiny_bundle / manifest.onnx.file, manifest.onnx.output, 1))
    tokenizer = TextTokenizer(tiny_bundle / manifest.tokenizer.file)
    rows = _rows(tokenizer, 24)
    pad = manifest.tokenizer.pad_token_id
    one = run_rows(session, rows, tokenizer, pad, 32, call_overhead_tokens=ONE_CALL)
    assert len(session.shapes) == 1
    session.shapes.clear()
    bucketed = run_rows(session, rows, tokenizer, pad, 32)
    assert len(session.shapes) > 1  # it did cut the batch
    assert sum(r * w for r, w in session.shapes) < 24 * max(len(r) + 2 for r in rows)
    for a, b in zip(one, bucketed, strict=True):
        assert a.shape == b.shape
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-5)  # GEMM shapes differ, not answers
        np.testing.assert_array_equal(a.argmax(-1), b.argmax(-1))


def test_entities_do_not_depend_on_the_bucketing(
    tiny_bundle: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    manifest = read_manifest(tiny_bundle)
    session = OnnxSession(tiny_bundle / manifest.onnx.file, manifest.onnx.output, 1)
    pipeline = NerPipeline(manifest, tiny_bundle, session)
    texts = [" ".join(["Paris"] * n + ["and", "Berlin"]) for n in range(1, 30, 2)]
    bucketed = pipeline.predict(texts).entities
    monkeypatch.setattr(batch_loop, "CALL_OVERHEAD_TOKENS", ONE_CALL)
    assert pipeline.predict(texts).entities == bucketed


def test_metered_session_counts_useful_and_padded_tokens(tiny_bundle: Path) -> None:
    manifest = read_manifest(tiny_bundle)
    onnx = OnnxSession(tiny_bundle / manifest.onnx.file, manifest.onnx.output, 1)
    session = MeteredSession(onnx, "bucket-test")
    tokenizer = TextTokenizer(tiny_bundle / manifest.tokenizer.file)
    rows = [
        tokenizer.encode_batch(["a b c d e f g h"])[0].ids,
        tokenizer.encode_batch(["a"])[0].ids,
    ]
    run_rows(
        session, rows, tokenizer, manifest.tokenizer.pad_token_id, 32, call_overhead_tokens=ONE_CALL
    )

    def value(kind: str) -> float:
        got = REGISTRY.get_sample_value(
            "infer_call_tokens_total", {"model": "bucket-test", "version": "", "kind": kind}
        )
        return got or 0.0

    lengths = [len(r) + tokenizer.num_special_tokens for r in rows]
    assert value("useful") == sum(lengths)
    assert value("padding") == max(lengths) - min(lengths)
