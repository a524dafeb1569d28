"""Tiny random sequence classifiers on six encoders (Longformer, BERT, RoBERTa, XLM-R, DistilBERT,
DeBERTa-v2), both checkpoint forms, multi-label and single-label heads, with the tokenizers of
``tests.families`` (nothing downloaded).

``python -m tests.classify_families OUT_DIR`` exports every case and prints the parity table, then
serves them all and prints how far ``/v1/classify`` is from PyTorch (HF tokenizer, eager model,
the same windows and aggregation).
"""

from __future__ import annotations

import contextlib
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import save_file
from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer

from tests.families import ENCODERS, MULTILINGUAL, TOKENIZERS, tiny_config

LABELS = ["greet", "order", "track", "cancel", "complain"]
MAX_LENGTH, STRIDE = 64, 16
# A text of several windows, so aggregation over windows is part of every comparison.
LONG_TEXT = " ".join(MULTILINGUAL) * 2
TEXTS = [*MULTILINGUAL, LONG_TEXT]


def _config(model_type: str, vocab: int) -> Any:
    if model_type == "longformer":  # windows of 16 keys inside 64-token inputs: sliding windows
        return AutoConfig.for_model(
            "longformer",
            vocab_size=vocab,
            hidden_size=32,
            num_hidden_layers=2,
            num_attention_heads=2,
            intermediate_size=64,
            attention_window=[8, 16],
            max_position_embeddings=66,
            pad_token_id=1,
            type_vocab_size=1,
        )
    return tiny_config(model_type, vocab)


TOKENIZER_OF = {**{m: kind for m, (kind, _) in ENCODERS.items()}, "longformer": "bpe"}


def write_classifier(root: Path, model_type: str, head: str, seed: int = 0) -> Path:
    """Both checkpoint forms: ``dir/`` and ``model.pt`` + ``base/`` + ``labels.txt``.

    ``head`` multi: config.json says multi_label_classification; single: problem_type unset
    (what HF writes for a softmax classifier until it has trained).
    """
    torch.manual_seed(seed)
    tok_dir = TOKENIZERS[TOKENIZER_OF[model_type]](root / "base")
    tokenizer = AutoTokenizer.from_pretrained(str(tok_dir))
    config = _config(model_type, len(tokenizer))
    config.num_labels = len(LABELS)
    config.id2label = dict(enumerate(LABELS))
    config.label2id = {t: i for i, t in enumerate(LABELS)}
    config.problem_type = "multi_label_classification" if head == "multi" else None
    model = AutoModelForSequenceClassification.from_config(config)
    with torch.no_grad():  # peaky attention (window bugs show) and logits of order 1
        for name, p in model.named_parameters():
            if p.dim() > 1:
                p.normal_(0, 0.3 if "classifier" in name or "pooler" in name else 0.1)
    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    config.save_pretrained(str(root / "base"))
    tokenizer.save_pretrained(str(root / "dir"))
    config.save_pretrained(str(root / "dir"))
    save_file(state, str(root / "dir" / "model.safetensors"))
    torch.save({"model_state_dict": state, "epoch": 1}, root / "model.pt")
    (root / "labels.txt").write_text("\n".join(LABELS) + "\n")
    return root


@dataclass(frozen=True)
class Case:
    model_type: str
    head: str  # multi | single
    form: str  # dir | pt

    @property
    def id(self) -> str:
        return f"{self.model_type}-{self.head}-{self.form}"


# Every encoder in both forms and with both heads; every (form, head) pair across the table.
ENCODER_TYPES = ("longformer", "bert", "roberta", "xlm-roberta", "distilbert", "deberta-v2")
CASES = [
    Case(m, head, form)
    for i, m in enumerate(ENCODER_TYPES)
    for head, form in (
        (("multi", "dir"), ("single", "pt")) if i % 2 else (("multi", "pt"), ("single", "dir"))
    )
]


def source_args(root: Path, form: str) -> list[str]:
    if form == "dir":
        return ["--checkpoint", str(root / "dir")]
    return ["--checkpoint", str(root / "model.pt"), "--base", str(root / "base"),
            "--labels", str(root / "labels.txt")]  # fmt: skip


def export_case(case: Case, root: Path, bundles: Path) -> Path:
    """Write the checkpoint under ``root`` and export it to ``bundles/<case id>``."""
    from export.cli import main

    write_classifier(root, case.model_type, case.head)
    out = bundles / case.id
    args = [*source_args(root, case.form), "--out", str(out), "--force"]
    window = ["--max-length", str(MAX_LENGTH), "--stride", str(STRIDE)]
    assert main(["classify", *args, *window]) == 0
    return out


def reference_probabilities(root: Path, texts: list[str]) -> np.ndarray:
    """PyTorch: HF tokenizer, the service's windows (own CLS each), HF eager model, the bundle's
    aggregation (multi-label: max of sigmoid; single-label: mean of softmax)."""
    from export.checkpoint import load_checkpoint
    from families.classify.model import build_classifier
    from families.classify.runtime import aggregate, probabilities_of
    from service.text.inputs import build_inputs
    from service.text.windows import plan_windows

    raw = load_checkpoint(root / "dir")
    classifier = build_classifier(raw)
    tok = raw.tokenizer
    prefix = [tok.cls_token_id]
    suffix = [tok.sep_token_id]
    capacity = MAX_LENGTH - 2
    out = []
    for text in texts:
        ids = tok(text, add_special_tokens=False)["input_ids"]
        rows = [np.asarray(ids[w.start : w.end]) for w in plan_windows(len(ids), capacity, STRIDE)]
        inputs = build_inputs(rows, prefix, suffix, int(tok.pad_token_id))
        probs = probabilities_of(classifier.reference_logits(inputs), classifier.head)
        aggregation = "max" if classifier.head == "multi-label" else "mean"
        out.append(aggregate(probs, np.zeros(len(rows), dtype=np.int64), 1, aggregation)[0])
    return np.stack(out)


def served_probabilities(base: str, name: str, texts: list[str]) -> tuple[np.ndarray, list[Any]]:
    import httpx

    response = httpx.post(
        f"{base}/v1/classify",
        json={"texts": texts, "model": name, "return_scores": True},
        timeout=120,
    )
    response.raise_for_status()
    results = response.json()["results"]
    return np.asarray([[r["scores"][label] for label in LABELS] for r in results]), results


def parity_table(root: Path) -> list[str]:
    """Export every case, serve them all, and list export parity and served-vs-PyTorch figures."""
    from service.bundle import read_manifest
    from tests.helpers import running_server

    bundles = root / "bundles"
    with contextlib.redirect_stdout(sys.stderr):  # the export's progress lines stay off the table
        for case in CASES:
            export_case(case, root / case.id, bundles)
    lines = [
        "| encoder | head | checkpoint form | export parity: max abs prob diff (cases) | "
        "/v1/classify vs PyTorch: max abs prob diff |",
        "|---|---|---|---|---|",
    ]
    with running_server(bundles) as base:
        for case in CASES:
            parity = read_manifest(bundles / case.id).parity
            served, _ = served_probabilities(base, case.id, TEXTS)
            diff = float(np.abs(served - reference_probabilities(root / case.id, TEXTS)).max())
            lines.append(
                f"| {case.model_type} | {case.head}-label | {case.form} | "
                f"{parity.max_abs_diff:.1e} ({parity.cases}) | {diff:.1e} |"
            )
    return lines


if __name__ == "__main__":  # python -m tests.classify_families OUT_DIR
    print("\n".join(parity_table(Path(sys.argv[1]))))
