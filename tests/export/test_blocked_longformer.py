"""Blocked Longformer vs the unmodified HF model, in PyTorch and after ONNX export.

Weights are re-initialised "peaky" (std 0.15, random biases and LayerNorms): HF's std-0.02 init
makes attention nearly uniform and hides window bugs. Every real token's hidden state is compared
per layer, since a window one token too narrow barely moves the logits.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from torch import Tensor, nn
from transformers import LongformerConfig, LongformerForSequenceClassification

from families.postures import blocked_longformer
from families.postures.blocked_longformer import ExportableLongformer, export_onnx

VOCAB = 120
MAX_LENGTH = 1024  # max_position_embeddings - 2 (at most: pad id 0 allows one more)
CONFIGS: dict[str, dict[str, Any]] = {
    "window32": {"attention_window": 32, "num_hidden_layers": 2},
    "windows16-32-16": {"attention_window": [16, 32, 16], "num_hidden_layers": 3},
    "window6": {"attention_window": 6, "num_hidden_layers": 2},  # odd b = 3: query blocks of b
    # pad id 0 shifts the position ids (they start at pad id + 1): the project's own models use it
    "window8-pad0": {
        "attention_window": 8,
        "num_hidden_layers": 2,
        "pad_token_id": 0,
        "bos_token_id": 2,
    },
}


def _peaky_model(name: str) -> LongformerForSequenceClassification:
    config = LongformerConfig(
        vocab_size=VOCAB,
        hidden_size=64,
        num_attention_heads=4,
        intermediate_size=128,
        max_position_embeddings=MAX_LENGTH + 2,
        num_labels=5,
        problem_type="multi_label_classification",
        **CONFIGS[name],
    )
    torch.manual_seed(0)
    model = LongformerForSequenceClassification(config)  # type: ignore[no-untyped-call]
    model.eval()  # type: ignore[no-untyped-call]
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.Linear | nn.Embedding):
                module.weight.normal_(0.0, 0.15)
            if isinstance(module, nn.Linear):
                module.bias.normal_(0.0, 0.15)  # non-zero biases exercise the global folding
            if isinstance(module, nn.LayerNorm):
                module.weight.normal_(1.0, 0.1)
                module.bias.normal_(0.0, 0.1)
    return model


@pytest.fixture(scope="module", autouse=True)
def _one_torch_thread() -> Iterator[None]:
    """These models are tiny: with 2 threads, OpenMP spin-waits dominate on a busy 2-core box."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module", params=list(CONFIGS))
def hf_model(request: pytest.FixtureRequest) -> LongformerForSequenceClassification:
    return _peaky_model(request.param)


def _batch(
    model, lengths: list[int], total: int | None = None, seed: int = 0
) -> tuple[Tensor, Tensor]:
    """Right-padded ids: <s> first, the pad id after each length, like a tokenizer's batch."""
    config = model.config
    generator = torch.Generator().manual_seed(seed)
    total = total or max(lengths)
    input_ids = torch.randint(3, VOCAB, (len(lengths), total), generator=generator)
    input_ids[:, 0] = config.bos_token_id
    attention_mask = torch.zeros_like(input_ids)
    for row, length in enumerate(lengths):
        attention_mask[row, :length] = 1
        input_ids[row, length:] = config.pad_token_id
    return input_ids, attention_mask


def _hf_outputs(model, input_ids: Tensor, attention_mask: Tensor):
    global_mask = torch.zeros_like(input_ids)
    global_mask[:, 0] = 1
    with torch.no_grad():
        return model(
            input_ids,
            attention_mask=attention_mask,
            global_attention_mask=global_mask,
            output_hidden_states=True,
        )


def _max_hidden_diff(expected, actual, attention_mask: Tensor) -> float:
    """Largest difference over every layer's real tokens (HF leaves padding rows different)."""
    real = attention_mask[..., None].bool()
    pairs = zip(expected, actual, strict=True)
    return float(max(((want - got).abs() * real).max().item() for want, got in pairs))


TORCH_CASES = [
    [1], [2], [7], [8], [9], [15], [16], [17], [31], [32], [33], [63], [64], [65],
    [95], [96], [97], [100], [MAX_LENGTH], [100, 37, 1], [33, 32, 31], [16, 1],
]  # fmt: skip


@pytest.mark.parametrize("lengths", TORCH_CASES, ids=str)
def test_matches_hf_in_pytorch(hf_model, lengths: list[int]) -> None:
    input_ids, attention_mask = _batch(hf_model, lengths)
    expected = _hf_outputs(hf_model, input_ids, attention_mask)
    wrapper = ExportableLongformer(hf_model)
    with torch.no_grad():
        logits = wrapper(input_ids, attention_mask)
        states = wrapper.hidden_states(input_ids, attention_mask)
    assert torch.isfinite(logits).all()
    assert (logits - expected.logits).abs().max().item() <= 1e-5
    assert len(states) == len(expected.hidden_states)
    assert _max_hidden_diff(expected.hidden_states, states, attention_mask) <= 2e-5


def test_padding_ids_do_not_matter(hf_model) -> None:
    """Only attention_mask marks padding: garbage ids there must not change any logit."""
    input_ids, attention_mask = _batch(hf_model, [40, 9, 1], total=50)
    garbage = input_ids.clone()
    garbage[attention_mask == 0] = 7
    wrapper = ExportableLongformer(hf_model)
    with torch.no_grad():
        diff = (wrapper(input_ids, attention_mask) - wrapper(garbage, attention_mask)).abs()
    assert diff.max().item() <= 1e-6


def test_peaky_weights_expose_a_window_one_token_narrow(hf_model, monkeypatch) -> None:
    """Guards the guard: dropping the farthest left key must show up in the hidden states."""
    original = blocked_longformer._local_window

    def narrow(real: Tensor, block: int) -> blocked_longformer._Window:
        window = original(real, block)
        bias = window.bias.clone()  # [..., query rows, 1 + window]: CLS column first
        rows = torch.arange(bias.shape[-2])
        bias[..., rows, rows + 1] = blocked_longformer._MASKED  # the key at offset -b
        return window._replace(bias=bias)

    monkeypatch.setattr(blocked_longformer, "_local_window", narrow)
    input_ids, attention_mask = _batch(hf_model, [100])
    expected = _hf_outputs(hf_model, input_ids, attention_mask)
    with torch.no_grad():
        states = ExportableLongformer(hf_model).hidden_states(input_ids, attention_mask)
    assert _max_hidden_diff(expected.hidden_states, states, attention_mask) > 1e-2


def test_reuses_hf_parameters(hf_model) -> None:
    wrapper = ExportableLongformer(hf_model)
    ours = {id(p) for p in wrapper.parameters()}
    assert ours == {id(p) for p in hf_model.parameters()}


@pytest.fixture(scope="module")
def onnx_path(hf_model, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Exported once per config (traced at batch 2 x 35), reused by every shape below."""
    return export_onnx(ExportableLongformer(hf_model), tmp_path_factory.mktemp("onnx") / "m.onnx")


@pytest.fixture(scope="module")
def onnx_session(onnx_path: Path) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    return ort.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])


def test_onnx_axes_are_dynamic(onnx_path: Path) -> None:
    graph = onnx.load(onnx_path).graph
    for tensor in graph.input:
        assert [d.dim_param for d in tensor.type.tensor_type.shape.dim] == ["batch", "sequence"]
    assert graph.output[0].type.tensor_type.shape.dim[0].dim_param == "batch"


ONNX_CASES = [
    ([1], None), ([2], None), ([5], None), ([8], None), ([16], None), ([34], None), ([35], None),
    ([36], None), ([48], None), ([49], None), ([129], None), ([300], None), ([MAX_LENGTH], None),
    ([100, 37, 1], None), ([3, 2, 1], None), ([64, 64, 64], None), ([10, 10, 10], 40),
    ([MAX_LENGTH, 513, 17], None),
]  # fmt: skip


@pytest.mark.slow
@pytest.mark.parametrize(("lengths", "total"), ONNX_CASES, ids=str)
def test_onnx_matches_hf(hf_model, onnx_session, lengths: list[int], total: int | None) -> None:
    """One graph traced at batch 2 x 35 must hold at every other batch size and length."""
    seed = len(lengths) * 1000 + max(lengths)
    input_ids, attention_mask = _batch(hf_model, lengths, total, seed)
    expected = torch.sigmoid(_hf_outputs(hf_model, input_ids, attention_mask).logits).numpy()
    feeds = {"input_ids": input_ids.numpy(), "attention_mask": attention_mask.numpy()}
    logits = onnx_session.run(["logits"], feeds)[0]
    assert logits.shape == expected.shape
    assert np.abs(1.0 / (1.0 + np.exp(-logits)) - expected).max() <= 1e-4
