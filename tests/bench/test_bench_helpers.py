"""The benchmark's own arithmetic: FLOP counts, exact-length inputs, percentile summaries."""

from __future__ import annotations

import pytest
import torch
from tokenizers import Tokenizer
from torch.utils.flop_counter import FlopCounterMode
from transformers import AutoModelForTokenClassification, BertConfig

from bench.flops import bert_matmul_flops, longformer_matmul_flops
from bench.inputs import document, utterances
from bench.stats import summarize
from default_models.ner_training import encoder_dir


@pytest.mark.parametrize("tokens", [1, 20, 57])
def test_bert_flops_match_torch_flop_counter(tokens: int) -> None:
    config = BertConfig(  # type: ignore[no-untyped-call]
        vocab_size=100,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        num_labels=7,
    )
    model = AutoModelForTokenClassification.from_config(  # type: ignore[no-untyped-call]
        config, attn_implementation="eager"
    )
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model.eval()(input_ids=torch.randint(5, 100, (1, tokens)))
    assert bert_matmul_flops(tokens, config.to_dict(), 7) == counter.get_total_flops()


def test_longformer_flops_grow_linearly_beyond_the_window() -> None:
    config = {
        "hidden_size": 32,
        "intermediate_size": 64,
        "num_hidden_layers": 2,
        "attention_window": [16, 32],
    }
    one, two, three = (longformer_matmul_flops(n, config, 5) for n in (1000, 2000, 3000))
    assert three - two == pytest.approx(two - one)  # banded attention: no quadratic term


def test_inputs_have_exact_token_counts() -> None:
    path = encoder_dir() / "tokenizer.json"
    tokenizer = Tokenizer.from_file(str(path))
    tokenizer.no_truncation()
    tokenizer.no_padding()
    texts = utterances(path, 50, low=8, high=40, seed=3)
    lengths = [len(e.ids) for e in tokenizer.encode_batch(texts)]
    assert min(lengths) >= 8 and max(lengths) <= 40 and len(set(lengths)) > 10
    assert texts == utterances(path, 50, low=8, high=40, seed=3)  # same set for every contender
    assert len(tokenizer.encode(document(path, 1500)).ids) == 1500


def test_summary_percentiles_and_rate() -> None:
    summary = summarize([0.001 * i for i in range(1, 101)], items=400, seconds=2.0)
    assert summary.p50_ms == pytest.approx(50.5)
    assert summary.p99_ms == pytest.approx(99.01)
    assert summary.per_s == 200.0


def test_every_baseline_target_uses_the_best_configuration_of_its_batch_size() -> None:
    from bench.report import baselines_table
    from bench.run import best_of

    def s(per_s: float, p50_ms: float) -> dict[str, float]:
        return {"per_s": per_s, "p50_ms": p50_ms}

    configs = {
        "1 thread, OMP_WAIT_POLICY default": {"1": s(20, 40), "32": s(10, 3000)},
        "2 threads, OMP_WAIT_POLICY default": {"1": s(30, 45), "32": s(25, 1200)},
        "2 threads, OMP_WAIT_POLICY PASSIVE": {"1": s(25, 50), "32": s(15, 2000)},
    }
    best = best_of(configs)
    # b=1 by latency (lowest p50), larger batches by throughput
    assert best["best"] == {
        "1": "1 thread, OMP_WAIT_POLICY default",
        "32": "2 threads, OMP_WAIT_POLICY default",
    }
    assert best["1"] == configs["1 thread, OMP_WAIT_POLICY default"]["1"]
    assert best["32"] == configs["2 threads, OMP_WAIT_POLICY default"]["32"]
    table = "\n".join(baselines_table("PyTorch", {**best, "configs": configs}))
    assert "configurations tried (3)" in table
    assert "| 2 threads, OMP_WAIT_POLICY default | 30.0 (45) | **25.0 (1200)** |" in table
    assert "| 1 thread, OMP_WAIT_POLICY default | **20.0 (40)** | 10.0 (3000) |" in table


def test_the_raw_bucket_yardstick_is_the_faster_run_per_plan() -> None:
    """The c=32 target's raw session runs before and after the service: per plan the faster
    run counts, both rates are kept, and what is not a plan comes through."""
    from bench.run import best_plans

    before = {"16": {"per_s": 80.0, "padded_fraction": 0.07}, "one call": {"per_s": 90.0}}
    after = {"16": {"per_s": 120.0, "padded_fraction": 0.07}, "one call": {"per_s": 85.0}}
    best = best_plans([{**before, "peak_rss_kib": 5}, {**after, "peak_rss_kib": 6}])
    assert best["16"]["per_s"] == 120.0 and best["16"]["runs_per_s"] == [80.0, 120.0]
    assert best["one call"]["per_s"] == 90.0 and best["one call"]["runs_per_s"] == [90.0, 85.0]
    assert best["peak_rss_kib"] == 5


def test_server_cpu_is_split_by_thread_role_per_request() -> None:
    """Named threads lose their model suffix, unnamed ones count as ONNX Runtime's pool, and a
    thread under 0.5% of the total is left out."""
    from bench.threads import NATIVE, per_request_ms

    before = {1: 10.0, 2: 5.0, 3: 0.0, 4: 0.0}
    after = {1: 11.0, 2: 9.0, 3: 3.0, 4: 0.01, 5: 0.5}  # 5: a thread born meanwhile
    names = {1: "MainThread", 2: "batcher-ner-base", 4: "finish-ner-base_0", 5: "finish-x_0"}
    used = per_request_ms(before, after, names, requests=1000)
    assert used == {"batcher": 4.0, NATIVE: 3.0, "MainThread": 1.0, "finish": 0.5}
    assert list(used) == ["batcher", NATIVE, "MainThread", "finish"]  # busiest first
    assert per_request_ms(before, after, {}, 1000)["unnamed"] == 8.5  # py-spy could not attach
