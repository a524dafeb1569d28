"""Longformer sequence classifier in an export-friendly blocked form, reusing the HF weights.

HF's sliding-chunk attention traces to ONNX with baked-in shapes and runs slower in ONNX Runtime
than PyTorch eager. This module computes the same function as
`LongformerForSequenceClassification` with global attention on the CLS token only, written so that
one traced graph serves every batch size and length:

* the sequence is padded in the graph to a multiple of every layer's b = attention_window / 2;
* queries go in blocks of h = b/2 rows; each block's window is the 2b + h keys within b of it,
  under the band |i - j| <= b (HF's window: 513 keys for attention_window 512) with CLS and
  padding removed, plus one leading column for CLS using the regular key/value, exactly as HF
  scores the global token for local queries (scores [h, 1 + 2b + h]; blocks of b rows with
  [b, 1 + 3b] scores work too but spend ~17% more on the memory-bound mask and softmax);
* the CLS row is then recomputed as global attention over every real token with the `*_global`
  projections; key_global/value_global are folded into the CLS query, so it costs O(L*E);
* the last layer only computes the CLS position, which is all the classification head reads.
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path
from typing import NamedTuple, cast

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

    Holds the HF submodules themselves (no weight copies). Inference only, fp32: construction puts
    the shared submodules in eval mode. `max_length` is the longest input the position embeddings
    allow (4,096 for longformer-base-4096).
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
        hidden, windows, key_bias = self._embed(input_ids, attention_mask)
        *layers, last = self._typed_layers()
        for layer, block in zip(layers, self.blocks[:-1], strict=True):
            hidden = _full_layer(layer, hidden, windows[block], key_bias)
        cls = _cls_only_layer(last, hidden, key_bias)
        logits: Tensor = self.classifier(cls)
        return logits

    def hidden_states(self, input_ids: Tensor, attention_mask: Tensor) -> list[Tensor]:
        """Embeddings and every layer's output [B, L, E], like HF's `output_hidden_states`.

        For validation: every token's state exposes window bugs that the logits can hide.
        """
        length = input_ids.shape[1]
        hidden, windows, key_bias = self._embed(input_ids, attention_mask)
        states = [hidden]
        for layer, block in zip(self._typed_layers(), self.blocks, strict=True):
            hidden = _full_layer(layer, hidden, windows[block], key_bias)
            states.append(hidden)
        return [state[:, :length] for state in states]

    def _typed_layers(self) -> list[LongformerLayer]:
        return [cast(LongformerLayer, layer) for layer in self.layers]

    def _embed(
        self, input_ids: Tensor, attention_mask: Tensor
    ) -> tuple[Tensor, dict[int, _Window], Tensor]:
        """Embeddings padded to a multiple of every block size, each block size's local window,
        and the global row's key mask [B, Lp] (0 for real tokens, _MASKED for padding)."""
        hidden: Tensor = self.embeddings(input_ids=input_ids)
        # A traced size here, so the padding is computed in the graph, not baked in.
        padding = (self.pad_multiple - input_ids.shape[1] % self.pad_multiple) % self.pad_multiple
        hidden = F.pad(hidden, (0, 0, 0, padding))
        real = F.pad(attention_mask, (0, padding)) != 0
        key_bias = torch.where(real, 0.0, _MASKED).to(hidden.dtype)
        windows = {block: _local_window(real, block) for block in sorted(set(self.blocks))}
        return hidden, windows, key_bias


class _Window(NamedTuple):
    """Where each query block's keys are, and which of them it may attend to."""

    positions: Tensor  # [n * T] key positions, T = 1 + 2b + h per block: CLS, then the window
    bias: Tensor  # [B, 1, n, h, T] additive mask: 0 or _MASKED


def _query_step(block: int) -> int:
    """Query rows per block: b/2 when possible, so a window spans 2.5b keys instead of 3b."""
    return block // 2 if block % 2 == 0 else block


def _local_window(real: Tensor, block: int) -> _Window:
    """Key positions and mask for query blocks of h rows over the padded sequence [B, Lp].

    Block i covers queries [i*h, (i+1)*h); column c >= 1 is key i*h - b + c - 1. HF's band is
    |query - key| <= b; CLS and padding are removed from the window and CLS comes back as column
    0, as HF does for its global token. Out-of-range columns point at CLS but are masked.
    """
    step = _query_step(block)
    # Block starts from a cumulative sum, not arange(n): n stays a graph value when traced.
    starts = torch.ones_like(real[0, ::step], dtype=torch.long).cumsum(0) * step - step  # [n]
    raw = starts[:, None] - block + torch.arange(2 * block + step)[None, :]  # [n, 2b + h]
    inside = (raw > 0) & (raw < starts[-1] + step)  # excludes CLS itself and the padding ends
    positions = torch.cat((torch.zeros_like(raw[:, :1]), torch.where(inside, raw, 0)), dim=1)
    usable = torch.cat((torch.ones_like(inside[:, :1]), inside), dim=1)  # [n, T]
    rows = torch.arange(step)[:, None]
    cols = torch.arange(2 * block + step)[None, :]
    band = (cols - block - rows).abs() <= block  # [h, 2b + h]: |query - key| <= b
    band = torch.cat((torch.ones_like(band[:, :1]), band), dim=1)  # [h, T]
    real_keys = real.index_select(1, positions.reshape(-1)).reshape(
        real.shape[0], -1, 1, 1 + 2 * block + step
    )
    allowed = band & usable[:, None, :] & real_keys  # [B, n, h, T]
    return _Window(positions.reshape(-1), torch.where(allowed, 0.0, _MASKED)[:, None])


def _gather_windows(x: Tensor, window: _Window) -> Tensor:
    """[B, H, Lp, d] -> [B, H, n, T, d]: each block's keys (or values) in one Gather."""
    gathered = x.index_select(2, window.positions)
    return gathered.reshape(x.shape[0], x.shape[1], -1, window.bias.shape[-1], x.shape[3])


def _linear(module: nn.Linear, x: Tensor) -> Tensor:
    """Linear on the flattened tokens: exports as one Gemm with its bias fused."""
    out: Tensor = module(x.reshape(-1, x.shape[-1]))
    return out.reshape(x.shape[0], -1, out.shape[-1])


def _split_heads(x: Tensor, attn: LongformerSelfAttention) -> Tensor:
    """[B, L, E] -> [B, H, L, d]."""
    return x.reshape(x.shape[0], -1, attn.num_heads, attn.head_dim).transpose(1, 2)


def _local_attention(attn: LongformerSelfAttention, hidden: Tensor, window: _Window) -> Tensor:
    """Sliding-window attention for every row [B, Lp, E]; the CLS row is replaced later."""
    batch, heads, dim = hidden.shape[0], attn.num_heads, attn.head_dim
    query = _split_heads(_linear(attn.query, hidden) / math.sqrt(dim), attn)
    key = _split_heads(_linear(attn.key, hidden), attn)
    value = _split_heads(_linear(attn.value, hidden), attn)
    q_blocks = query.reshape(batch, heads, -1, window.bias.shape[-2], dim)  # [B, H, n, h, d]
    scores = q_blocks @ _gather_windows(key, window).transpose(-1, -2) + window.bias
    probs = torch.softmax(scores, dim=-1)  # [B, H, n, h, T]
    context = probs @ _gather_windows(value, window)  # [B, H, n, h, d]
    return context.permute(0, 2, 3, 1, 4).reshape(batch, -1, heads * dim)


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
    """Attention output projection, residual LayerNorm and the FFN, via HF's own submodules.

    On flattened tokens [B*L, E], so each Linear exports as a Gemm with its bias fused.
    """
    width = hidden.shape[-1]
    flat_hidden = hidden.reshape(-1, width)
    attended: Tensor = layer.attention.output(context.reshape(-1, width), flat_hidden)
    out: Tensor = layer.output(layer.intermediate(attended), attended)
    return out.reshape(hidden.shape[0], -1, width)


def _full_layer(
    layer: LongformerLayer, hidden: Tensor, window: _Window, key_bias: Tensor
) -> Tensor:
    """One encoder layer for every position of the padded sequence."""
    attn = layer.attention.self
    context = _local_attention(attn, hidden, window)
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
