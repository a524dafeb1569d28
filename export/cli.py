"""Command line of the export stage: ``python -m export ner ...``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from export.errors import ExportError


def _ner_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("ner", help="export a BERT-CRF token classifier to an ONNX bundle")
    p.add_argument(
        "--checkpoint",
        type=Path,
        required=True,
        help="model directory (config.json, tokenizer, weights) or training .pt file",
    )
    p.add_argument("--out", type=Path, required=True, help="bundle directory to create")
    p.add_argument("--base", type=Path, help="config + tokenizer directory (for a .pt checkpoint)")
    p.add_argument("--labels", type=Path, help="tag list, one per line (for a .pt checkpoint)")
    p.add_argument("--name", help="bundle name (default: the --out directory name)")
    p.add_argument("--version", default="1", help="bundle version string (default: 1)")
    p.add_argument(
        "--max-length",
        type=int,
        help="tokens per window incl. special tokens (default: min(model max, 512))",
    )
    p.add_argument(
        "--stride", type=int, help="tokens shared by consecutive windows (default: max length / 4)"
    )
    p.add_argument(
        "--no-bio-constraints",
        dest="constrain_transitions",
        action="store_false",
        help="decode without forbidding invalid BIO moves (models trained without them)",
    )
    p.add_argument(
        "--atol",
        type=float,
        default=1e-4,
        help="max abs emission difference ONNX vs PyTorch (default: 1e-4)",
    )
    p.add_argument("--force", action="store_true", help="replace an existing bundle directory")
    p.add_argument(
        "--trust-checkpoint",
        action="store_true",
        help="unpickle a .pt file fully (only for files you trust)",
    )


def _run_ner(args: argparse.Namespace) -> None:
    from export.ner.exporter import NerExportOptions, export_ner

    export_ner(
        NerExportOptions(
            checkpoint=args.checkpoint,
            out=args.out,
            base=args.base,
            labels=args.labels,
            name=args.name,
            version=args.version,
            max_length=args.max_length,
            stride=args.stride,
            constrain_transitions=args.constrain_transitions,
            atol=args.atol,
            force=args.force,
            trust_checkpoint=args.trust_checkpoint,
        )
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m export", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    _ner_parser(sub)
    args = parser.parse_args(argv)
    try:
        _run_ner(args)
    except ExportError as exc:
        print(f"export failed: {exc}", file=sys.stderr)
        return 1
    return 0
