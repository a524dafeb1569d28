"""Tiny random token taggers on six encoders, with tokenizers built here (nothing downloaded).

WordPiece comes from the MiniLM package already used by the default model; byte-level BPE
(RoBERTa's ``Ġ``) and Unigram with NFKC (XLM-R / DeBERTa's ``▁``) are trained in a second on a few
multilingual lines with the ``tokenizers`` library.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file
from tokenizers import (
    Tokenizer,
    decoders,
    models,
    normalizers,
    pre_tokenizers,
    processors,
    trainers,
)
from torch import nn
from torchcrf import CRF
from transformers import (
    AutoConfig,
    AutoModel,
    AutoModelForTokenClassification,
    AutoTokenizer,
    PreTrainedTokenizerFast,
)

from default_models.ner_training import encoder_dir

BIO = ["O", "B-PER", "I-PER", "B-LOC", "I-LOC"]
BIOES = ["O", "B-PER", "I-PER", "E-PER", "S-PER", "B-LOC", "I-LOC", "E-LOC", "S-LOC"]
MULTILINGUAL = [
    "Angela Merkel met Emmanuel Macron in Paris on Tuesday.",
    "Врховни суд Србије донео је пресуду у Београду.",
    "Vrhovni sud Srbije doneo je presudu u Beogradu, čćžšđ.",
    "Đặt cho tôi 2 bánh mì ở Hà Nội",
    "मुझे मुंबई में दो समोसे चाहिए",
    "東京タワーの近くでラーメンを食べたい",
    "order 3 paneer tikka 🍕 from sharma sweets to andheri west!!",
    "ﬁle ＡＢＣ１２３ at Café Zoë, e\u0301cole",
    "  leading and   multiple\tspaces\nnewline\u00a0nbsp\u2003em  ",
    "inayat ko bolo ki kal 5 baje aana",
]
SPECIALS = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
TINY = {
    "hidden_size": 32,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "intermediate_size": 64,
}


def _wrap(tokenizer: Tokenizer, out: Path) -> None:
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        bos_token="<s>",
        eos_token="</s>",
        cls_token="<s>",
        sep_token="</s>",
        pad_token="<pad>",
        unk_token="<unk>",
        mask_token="<mask>",
    )
    fast.save_pretrained(str(out))


def byte_level_bpe(out: Path) -> Path:
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=600,
        special_tokens=SPECIALS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tokenizer.train_from_iterator(MULTILINGUAL * 3, trainer)
    tokenizer.post_processor = processors.RobertaProcessing(
        ("</s>", 2), ("<s>", 0), trim_offsets=True, add_prefix_space=False
    )
    _wrap(tokenizer, out)
    return out


def unigram(out: Path) -> Path:
    tokenizer = Tokenizer(models.Unigram())
    tokenizer.normalizer = normalizers.NFKC()
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace()
    tokenizer.decoder = decoders.Metaspace()
    trainer = trainers.UnigramTrainer(vocab_size=400, special_tokens=SPECIALS, unk_token="<unk>")
    tokenizer.train_from_iterator(MULTILINGUAL * 3, trainer)
    tokenizer.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>", special_tokens=[("<s>", 0), ("</s>", 2)]
    )
    _wrap(tokenizer, out)
    return out


def wordpiece(out: Path) -> Path:
    AutoTokenizer.from_pretrained(str(encoder_dir())).save_pretrained(str(out))
    return out


TOKENIZERS = {"wordpiece": wordpiece, "bpe": byte_level_bpe, "unigram": unigram}
# model_type -> (tokenizer kind, config overrides)
ENCODERS: dict[str, tuple[str, dict[str, Any]]] = {
    "bert": ("wordpiece", {}),
    "roberta": ("bpe", {"pad_token_id": 1, "max_position_embeddings": 66}),
    "xlm-roberta": ("unigram", {"pad_token_id": 1, "max_position_embeddings": 66}),
    "distilbert": ("wordpiece", {"dim": 32, "n_layers": 2, "n_heads": 2, "hidden_dim": 64}),
    "electra": ("wordpiece", {"embedding_size": 16}),
    "deberta-v2": (
        "unigram",
        {"pad_token_id": 1, "relative_attention": True, "pos_att_type": ["p2c", "c2p"]},
    ),
}


def tiny_config(model_type: str, vocab: int) -> Any:
    _, overrides = ENCODERS[model_type]
    base = {} if model_type == "distilbert" else dict(TINY)
    base.setdefault("max_position_embeddings", 64)
    return AutoConfig.for_model(model_type, vocab_size=vocab, **{**base, **overrides})


class CrfTagger(nn.Module):
    """What training code writes: ``self.<attr> = AutoModel...``, a classifier and a CRF."""

    def __init__(self, config: Any, num_tags: int, attr: str) -> None:
        super().__init__()
        setattr(self, attr, AutoModel.from_config(config))
        hidden = getattr(config, "hidden_size", None) or config.dim
        self.classifier = nn.Linear(hidden, num_tags)
        self.crf = CRF(num_tags, batch_first=True)


def write_tagger(
    root: Path, model_type: str, head: str, labels: list[str], prefix: str | None, seed: int = 0
) -> Path:
    """Both checkpoint forms: ``dir/`` and ``model.pt`` + ``base/`` + ``labels.txt``."""
    torch.manual_seed(seed)
    kind, _ = ENCODERS[model_type]
    tok_dir = TOKENIZERS[kind](root / "base")
    tokenizer = AutoTokenizer.from_pretrained(str(tok_dir))
    config = tiny_config(model_type, len(tokenizer))
    if head == "crf":
        module: nn.Module = CrfTagger(config, len(labels), prefix or "bert")
    else:
        config.num_labels = len(labels)
        module = AutoModelForTokenClassification.from_config(config)
    with torch.no_grad():  # logits of order 1: decoding is not decided by ties or by the CRF alone
        for name, p in module.named_parameters():
            if name.startswith("classifier.") and p.dim() > 1:
                p.normal_(0, 0.3)
            elif name.startswith("crf."):
                p.normal_(0, 1.0)
    save_checkpoint(root, module, config, tokenizer, labels)
    return root


def save_checkpoint(
    root: Path, module: nn.Module, config: Any, tokenizer: Any, labels: list[str]
) -> None:
    """Both checkpoint forms under ``root``: ``dir/`` (config with id2label = ``labels``,
    safetensors) and ``model.pt`` + ``base/`` (the config without labels) + ``labels.txt``."""
    state = {k: v.contiguous() for k, v in module.state_dict().items()}
    config.save_pretrained(str(root / "base"))
    config.id2label = dict(enumerate(labels))
    config.label2id = {t: i for i, t in enumerate(labels)}
    tokenizer.save_pretrained(str(root / "dir"))
    config.save_pretrained(str(root / "dir"))
    save_file(state, str(root / "dir" / "model.safetensors"))
    torch.save({"model_state_dict": state, "epoch": 1}, root / "model.pt")
    (root / "labels.txt").write_text("\n".join(labels) + "\n")


@dataclass(frozen=True)
class Case:
    model_type: str
    head: str
    labels: list[str]
    prefix: str | None  # attribute name of the encoder in the training code (CRF heads)
    form: str  # "dir" (form a) or "pt" (form b)
    extra: tuple[str, ...] = ()

    @property
    def id(self) -> str:
        scheme = "bio" if self.labels == BIO else "bioes"
        layout = "-cls+words" if "cls+words" in self.extra else ""
        return f"{self.model_type}-{self.head}-{scheme}-{self.form}{layout}"


CASES = [
    Case("bert", "crf", BIO, "bert", "dir"),
    Case("bert", "softmax", BIOES, None, "pt"),
    Case("roberta", "crf", BIOES, "roberta", "pt"),
    Case("roberta", "softmax", BIO, None, "dir"),
    Case("xlm-roberta", "crf", BIO, "bert", "pt"),  # self.bert = AutoModel(...) on an XLM-R config
    Case("xlm-roberta", "softmax", BIOES, None, "dir"),
    Case("distilbert", "crf", BIOES, "encoder", "dir"),
    Case("distilbert", "softmax", BIO, None, "pt"),
    Case("electra", "crf", BIO, "model", "pt"),
    Case("electra", "softmax", BIOES, None, "dir"),
    Case("deberta-v2", "crf", BIOES, "bert", "dir"),
    Case("deberta-v2", "softmax", BIO, None, "pt"),
    Case("xlm-roberta", "crf", BIOES, "bert", "dir", ("--crf-positions", "cls+words")),
]


def source_args(root: Path, form: str) -> list[str]:
    if form == "dir":
        return ["--checkpoint", str(root / "dir")]
    return ["--checkpoint", str(root / "model.pt"), "--base", str(root / "base"),
            "--labels", str(root / "labels.txt")]  # fmt: skip


def parity_table(root: Path) -> list[str]:
    """Export every case and list its parity figures (the issue's closing table)."""
    from export.cli import main
    from service.bundle import read_manifest

    lines = ["| case | head | scheme | form | encoder prefix | max abs diff | tag agreement |"]
    lines.append("|---|---|---|---|---|---|---|")
    for case in CASES:
        ckpt = write_tagger(root / case.id, case.model_type, case.head, case.labels, case.prefix)
        out = root / case.id / "bundle"
        args = [*source_args(ckpt, case.form), "--out", str(out), "--force"]
        assert main(["ner", *args, "--max-length", "64", "--stride", "16", *case.extra]) == 0
        parity = read_manifest(out).parity
        lines.append(
            f"| {case.id} | {case.head} | {'BIO' if case.labels == BIO else 'BIOES'} | "
            f"{case.form} | {case.prefix or '(own)'} | {parity.max_abs_diff:.2e} | "
            f"{parity.tag_agreement:.0%} of {parity.cases} |"
        )
    return lines


if __name__ == "__main__":  # python -m tests.families OUT_DIR
    print("\n".join(parity_table(Path(sys.argv[1]))))
