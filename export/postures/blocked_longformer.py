"""Longformer sequence classifier in an export-friendly blocked form, reusing the HF weights.

HF's sliding-chunk attention traces to ONNX with baked-in shapes and runs slower in ONNX Runtime
than PyTorch eager. This module computes the same function as
`LongformerForSequenceClassification` with global attention on the CLS token only, written so that
one traced graph serves every batch size and length:

* the sequence is padded in the graph to a multiple of every layer's block size
  b = attention_window / 2;
* each query block attends to key blocks i-1, i, i+1 under the band |i - j| <= b (HF's window,
  513 keys for attention_window 512) with CLS and padding removed, plus one extra column for CLS
  using the regular key/value, exactly as HF scores the global token for local queries;
* the CLS row is then recomputed as global attention over every real token with the `*_global`
  projections; key_global/value_global are folded into the CLS query, so it costs O(L*E);
* the last layer only computes the CLS position, which is all the classification head reads.
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path
from typing import cast

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from transformers import LongformerForSequenceClassification
from transformers.models.longformer.modeling_longformer import (
    LongformerLayer,
    LongformerSelfAttention,
)

__all__ = ["ExportableLongformer", "export_onnx"]

# Finite on purpose: softmax of a row whose keys are all masked must stay finite (no -inf - -inf).
_MASKED = -1e9


class ExportableLongformer(nn.Module):
    """HF Longformer classifier (global attention on CLS) as a shape-generic, traceable module.

    Holds the HF submodules themselves (no weight copies). Inference only: construction puts the
    shared submodules in eval mode.
    """

    def __init__(self, hf_model: LongformerForSequenceClassification) -> None:
        super().__init__()
        config = hf_model.config
        self.embeddings = hf_model.longformer.embeddings
        self.layers = hf_model.longformer.encoder.layer
        self.classifier = hf_model.classifier
        windows = config.attention_window
        if isinstance(windows, int):
            windows = [windows] * config.num_hidden_layers
        if len(windows) != len(self.layers) or any(w <= 0 or w % 2 for w in windows):
            raise ValueError(f"attention_window must be positive and even per layer: {windows}")
        self.blocks: tuple[int, ...] = tuple(w // 2 for w in windows)
        self.pad_multiple = math.lcm(*self.blocks)
        # Position ids start at padding_idx + 1 and must stay below max_position_embeddings.
        self.max_length = int(config.max_position_embeddings) - self.embeddings.padding_idx - 1
        self.eval()

    def forward(self, input_ids: Tensor, attention_mask: Tensor) -> Tensor:
        """Logits [B, num_labels] for right-padded input_ids/attention_mask [B, L]."""
        hidden, local_bias, key_bias = self._embed(input_ids, attention_mask)
        *layers, last = self._typed_layers()
        for layer, block in zip(layers, self.blocks[:-1], strict=True):
            hidden = _full_layer(layer, hidden, local_bias[block], key_bias, block)
        cls = _cls_only_layer(last, hidden, key_bias)
        logits: Tensor = self.classifier(cls)
        return logits

    def hidden_states(self, input_ids: Tensor, attention_mask: Tensor) -> list[Tensor]:
        """Embeddings and every layer's output [B, L, E], like HF's `output_hidden_states`.

        For validation: every token's state exposes window bugs that the logits can hide.
        """
        length = input_ids.shape[1]
        hidden, local_bias, key_bias = self._embed(input_ids, attention_mask)
        states = [hidden]
        for layer, block in zip(self._typed_layers(), self.blocks, strict=True):
            hidden = _full_layer(layer, hidden, local_bias[block], key_bias, block)
            states.append(hidden)
        return [state[:, :length] for state in states]

    def _typed_layers(self) -> list[LongformerLayer]:
        return [cast(LongformerLayer, layer) for layer in self.layers]

    def _embed(
        self, input_ids: Tensor, attention_mask: Tensor
    ) -> tuple[Tensor, dict[int, Tensor], Tensor]:
        """Embeddings padded to a multiple of every block size, and the attention biases."""
        hidden: Tensor = self.embeddings(input_ids=input_ids)
        # A traced size here, so the padding is computed in the graph, not baked in.
        padding = (self.pad_multiple - input_ids.shape[1] % self.pad_multiple) % self.pad_multiple
        hidden = F.pad(hidden, (0, 0, 0, padding))
        real = F.pad(attention_mask, (0, padding)) != 0
        key_bias = torch.where(real, 0.0, _MASKED).to(hidden.dtype)
        local_bias = {block: _local_bias(real, block) for block in sorted(set(self.blocks))}
        return hidden, local_bias, key_bias


def _query_step(block: int) -> int:
    """Query rows per block: b/2 when possible, so a window spans 2.5b keys instead of 3b."""
    return block // 2 if block % 2 == 0 else block


def _windows(x: Tensor, first: Tensor, block: int, step: int) -> Tensor:
    """[B, n*h, d] -> [B, n, 1 + 2b + h, d]: `first` [B, 1, d], then the keys of query block i.

    Query block i covers positions [i*h, (i+1)*h); its window starts b positions earlier and ends
    b positions later (zeros past the ends), so column c is position i*h - b + c.
    """
    span = block // step
    padded = F.pad(x, (0, 0, block, block))
    blocks = padded.reshape(x.shape[0], -1, step, x.shape[2])  # [B, n + 2*span, h, d]
    shifted = [blocks[:, j : j - 2 * span] for j in range(2 * span)] + [blocks[:, 2 * span :]]
    leading = first[:, None].expand_as(shifted[0][:, :, :1])
    return torch.cat((leading, *shifted), dim=2)


def _local_bias(real: Tensor, block: int) -> Tensor:
    """Additive mask [B, n, h, 1 + 2b + h]: the CLS column plus HF's band |i - j| <= b.

    Window keys are real tokens other than CLS: CLS has its own column (always allowed), as in HF.
    """
    step = _query_step(block)
    keys = torch.cat((torch.zeros_like(real[:, :1]), real[:, 1:]), dim=1).to(torch.float32)
    keys = keys[:, :, None]  # [B, Lp, 1]
    windows = _windows(keys, torch.ones_like(keys[:, :1]), block, step)[..., 0]  # [B, n, T]
    rows = torch.arange(step)[:, None]
    cols = torch.arange(2 * block + step)[None, :]
    band = (cols - block - rows).abs() <= block  # key offset from the query, within the window
    band = torch.cat((torch.ones_like(band[:, :1]), band), dim=1)  # [h, T]
    allowed = band & (windows[:, :, None, :] > 0.5)
    return torch.where(allowed, 0.0, _MASKED)


def _linear(module: nn.Linear, x: Tensor) -> Tensor:
    """Linear on the flattened tokens: exports as one Gemm with its bias fused."""
    out: Tensor = module(x.reshape(-1, x.shape[-1]))
    return out.reshape(x.shape[0], -1, out.shape[-1])


def _local_attention(
    attn: LongformerSelfAttention, hidden: Tensor, bias: Tensor, block: int
) -> Tensor:
    """Sliding-window attention for every row [B, Lp, E]; the CLS row is replaced later.

    One head at a time: each head's scores stay cache-sized, which beats one batched matmul
    over all heads by ~20% at 4,096 tokens (the mask add and softmax are memory-bound).
    """
    batch, dim, step = hidden.shape[0], attn.head_dim, _query_step(block)
    query = _linear(attn.query, hidden) / math.sqrt(dim)
    key = _linear(attn.key, hidden)
    value = _linear(attn.value, hidden)
    contexts = []
    for head in range(attn.num_heads):
        cols = slice(head * dim, (head + 1) * dim)
        k, v = key[:, :, cols], value[:, :, cols]
        q_blocks = query[:, :, cols].reshape(batch, -1, step, dim)  # [B, n, h, d]
        scores = q_blocks @ _windows(k, k[:, :1], block, step).transpose(-1, -2) + bias
        probs = torch.softmax(scores, dim=-1)  # [B, n, h, 1 + 2b + h]
        context = probs @ _windows(v, v[:, :1], block, step)  # [B, n, h, d]
        contexts.append(context.reshape(batch, -1, dim))
    return torch.cat(contexts, dim=-1)


def _global_cls(attn: LongformerSelfAttention, hidden: Tensor, key_bias: Tensor) -> Tensor:
    """CLS's global attention output [B, 1, E] over all real tokens.

    key_global is folded into the query (q.(W x_j + c) = (W^T q).x_j + const, and softmax drops
    the constant); value_global is applied after mixing (the probabilities sum to one). Both are
    exact and avoid projecting every token: O(L*E) instead of O(L*E^2).
    """
    batch, heads, dim = hidden.shape[0], attn.num_heads, attn.head_dim
    query = _linear(attn.query_global, hidden[:, :1]) / math.sqrt(dim)  # [B, 1, E]
    w_key = attn.key_global.weight.reshape(heads, dim, -1)  # [H, d, E]
    folded = query.reshape(batch, heads, 1, dim) @ w_key  # [B, H, 1, E]
    scores = hidden @ folded.reshape(batch, heads, -1).transpose(1, 2)  # [B, Lp, H]
    probs = torch.softmax(scores.transpose(1, 2) + key_bias[:, None, :], dim=-1)  # [B, H, Lp]
    mixed = (probs @ hidden)[:, :, None, :]  # [B, H, 1, E]
    w_value = attn.value_global.weight.reshape(heads, dim, -1)  # [H, d, E]
    out = mixed @ w_value.transpose(1, 2) + attn.value_global.bias.reshape(heads, 1, dim)
    return out.reshape(batch, 1, heads * dim)


def _feed_forward(layer: LongformerLayer, context: Tensor, hidden: Tensor) -> Tensor:
    """Attention output projection, residual LayerNorm and the FFN, via HF's own submodules."""
    attended: Tensor = layer.attention.output(context, hidden)
    out: Tensor = layer.output(layer.intermediate(attended), attended)
    return out


def _full_layer(
    layer: LongformerLayer, hidden: Tensor, local_bias: Tensor, key_bias: Tensor, block: int
) -> Tensor:
    """One encoder layer for every position of the padded sequence."""
    attn = layer.attention.self
    context = _local_attention(attn, hidden, local_bias, block)
    context = torch.cat((_global_cls(attn, hidden, key_bias), context[:, 1:]), dim=1)
    return _feed_forward(layer, context, hidden)


def _cls_only_layer(layer: LongformerLayer, hidden: Tensor, key_bias: Tensor) -> Tensor:
    """The last layer at the CLS position only [B, 1, E]: all the classification head reads."""
    context = _global_cls(layer.attention.self, hidden, key_bias)
    return _feed_forward(layer, context, hidden[:, :1])


def _dummy_inputs(model: ExportableLongformer) -> tuple[Tensor, Tensor]:
    """A padded batch of two whose length needs in-graph padding, so no branch is traced away."""
    length = min(2 * model.pad_multiple + 3, model.max_length)
    vocab = model.embeddings.word_embeddings.num_embeddings
    generator = torch.Generator().manual_seed(0)
    input_ids = torch.randint(3, max(vocab, 4), (2, length), generator=generator)
    attention_mask = torch.ones_like(input_ids)
    attention_mask[1, length // 2 + 1 :] = 0
    return input_ids, attention_mask


def export_onnx(model: ExportableLongformer, path: str | Path, opset: int = 17) -> Path:
    """Export one graph with dynamic batch and sequence axes (TorchScript tracer, opset 17).

    Tracer warnings raised by this module are errors: each one marks a value that would be baked
    into the graph. (HF/torch internals warn about static checks, e.g. padding_idx vs vocab size.)
    """
    path = Path(path)
    args = _dummy_inputs(model)
    axes = {0: "batch", 1: "sequence"}
    with torch.no_grad(), warnings.catch_warnings():
        tracer_warning = torch.jit.TracerWarning  # type: ignore[attr-defined]
        warnings.filterwarnings("error", category=tracer_warning, module=__name__)
        torch.onnx.export(
            model,
            args,
            str(path),
            input_names=["input_ids", "attention_mask"],
            output_names=["logits"],
            dynamic_axes={"input_ids": axes, "attention_mask": axes, "logits": {0: "batch"}},
            opset_version=opset,
            dynamo=False,
        )
    return path
