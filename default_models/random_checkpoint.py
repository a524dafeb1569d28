"""Random checkpoints (BERT-CRF, Longformer) in both forms the export accepts, for tests/benchmarks.

``python -m default_models.random_checkpoint --out DIR --size base [--family longformer]`` writes:
``DIR/dir/`` (form a: config.json with id2label, tokenizer, model.safetensors) and
``DIR/model.pt`` + ``DIR/base/`` + ``DIR/labels.txt`` (form b: a training checkpoint).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file
from transformers import AutoTokenizer, BertConfig

from default_models.bert_crf import BertCrfTagger
from default_models.ner_training import encoder_dir

LABELS = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC", "B-FOOD", "I-FOOD"]
SIZES = {
    "tiny": {
        "hidden_size": 32,
        "num_hidden_layers": 2,
        "num_attention_heads": 2,
        "intermediate_size": 64,
        "max_position_embeddings": 64,
    },
    "base": {
        "hidden_size": 768,
        "num_hidden_layers": 12,
        "num_attention_heads": 12,
        "intermediate_size": 3072,
        "max_position_embeddings": 512,
    },
}


def write_random_checkpoint(root: Path, size: str = "tiny", seed: int = 0) -> Path:
    torch.manual_seed(seed)
    config = BertConfig(vocab_size=30522, **SIZES[size])
    model = BertCrfTagger(config, len(LABELS)).eval()
    with torch.no_grad():  # peaky CRF scores so that decoding is not trivially all "O"
        for p in model.crf.parameters():
            p.normal_(0, 1.0)
    tokenizer = AutoTokenizer.from_pretrained(str(encoder_dir()))
    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    for form in ("dir", "base"):
        (root / form).mkdir(parents=True, exist_ok=True)
        tokenizer.save_pretrained(str(root / form))
    config.save_pretrained(str(root / "base"))
    config.id2label = dict(enumerate(LABELS))
    config.label2id = {t: i for i, t in enumerate(LABELS)}
    config.save_pretrained(str(root / "dir"))
    save_file(state, str(root / "dir" / "model.safetensors"))
    torch.save(
        {"model_state_dict": state, "epoch": 3, "optimizer_state_dict": {}}, root / "model.pt"
    )
    (root / "labels.txt").write_text("\n".join(LABELS) + "\n")
    return root


LONGFORMER_SIZES: dict[str, dict[str, Any]] = {
    "tiny": {
        "hidden_size": 32,
        "num_hidden_layers": 2,
        "num_attention_heads": 2,
        "intermediate_size": 64,
        "attention_window": [16, 32],
        "num_labels": 5,
    },
    "base": {
        "hidden_size": 768,
        "num_hidden_layers": 12,
        "num_attention_heads": 12,
        "intermediate_size": 3072,
        "attention_window": 512,
        "num_labels": 41,
    },
}


def write_random_longformer(root: Path, size: str = "tiny", seed: int = 0) -> Path:
    """A random multi-label Longformer (max 4,096 tokens) in both checkpoint forms."""
    from transformers import LongformerConfig, LongformerForSequenceClassification

    torch.manual_seed(seed)
    spec = dict(LONGFORMER_SIZES[size])
    labels = [f"Posture {i}" for i in range(int(spec.pop("num_labels")))]
    config = LongformerConfig(
        vocab_size=30522,
        pad_token_id=0,
        bos_token_id=101,
        eos_token_id=102,
        max_position_embeddings=4098,
        type_vocab_size=1,
        num_labels=len(labels),
        problem_type="multi_label_classification",
        **spec,
    )
    model = LongformerForSequenceClassification(config).eval()
    if size == "tiny":  # peaky weights: near-uniform attention would hide window bugs
        with torch.no_grad():
            for p in model.parameters():
                if p.dim() > 1:
                    p.normal_(0, 0.15)
    tokenizer = AutoTokenizer.from_pretrained(str(encoder_dir()))
    for form in ("dir", "base"):
        (root / form).mkdir(parents=True, exist_ok=True)
        tokenizer.save_pretrained(str(root / form))
    config.save_pretrained(str(root / "base"))
    config.id2label = dict(enumerate(labels))
    config.label2id = {t: i for i, t in enumerate(labels)}
    config.save_pretrained(str(root / "dir"))
    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(root / "dir" / "model.safetensors"))
    torch.save({"model_state_dict": state, "epoch": 1}, root / "model.pt")
    (root / "labels.txt").write_text("\n".join(labels) + "\n")
    return root


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--family", choices=["bert-crf", "longformer"], default="bert-crf")
    parser.add_argument("--size", choices=sorted(SIZES), default="base")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    write = write_random_checkpoint if args.family == "bert-crf" else write_random_longformer
    write(args.out, args.size, args.seed)
    print(
        f"random {args.size} {args.family} written to {args.out}: dir/, model.pt, base/, labels.txt"
    )


if __name__ == "__main__":
    main()
