"""Command line of the export stage.

python -m export ner        BERT-CRF checkpoint -> bundle
python -m export postures   Longformer classifier checkpoint -> bundle
python -m export calibrate  cross-validated thresholds of a posture bundle from a validation split
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from export.errors import ExportError
from export.variants.request import DEFAULT_MIN_AGREEMENT, VariantRequest


def _add_checkpoint_arguments(p: argparse.ArgumentParser, labels: str) -> None:
    """Arguments every export command shares: the two checkpoint forms and the bundle identity."""
    p.add_argument(
        "--checkpoint",
        type=Path,
        required=True,
        help="model directory (config.json, tokenizer, weights) or training .pt file",
    )
    p.add_argument("--out", type=Path, required=True, help="bundle directory to create")
    p.add_argument("--base", type=Path, help="config + tokenizer directory (for a .pt checkpoint)")
    p.add_argument("--labels", type=Path, help=f"{labels}, one per line (for a .pt checkpoint)")
    p.add_argument("--name", help="bundle name (default: the --out directory name)")
    p.add_argument("--version", default="1", help="bundle version string (default: 1)")
    p.add_argument("--force", action="store_true", help="replace an existing bundle directory")
    p.add_argument(
        "--trust-checkpoint",
        action="store_true",
        help="unpickle a .pt file fully (only for files you trust)",
    )


def _add_variant_arguments(p: argparse.ArgumentParser, unit: str) -> None:
    """Graph variants: the fp32 parity gate still runs; INT8 must also pass the accuracy gate."""
    p.add_argument(
        "--optimize",
        action="store_true",
        help="apply onnxruntime's exact transformer fusions (checked by the fp32 parity gate)",
    )
    p.add_argument(
        "--quantize",
        choices=["int8"],
        help="ship a dynamic INT8 graph (s8 weights, u8 activations) if it passes the gate",
    )
    p.add_argument(
        "--per-tensor",
        dest="per_channel",
        action="store_false",
        help="one INT8 scale per weight tensor (default: one per output channel)",
    )
    p.add_argument(
        "--keep-fp32",
        action="append",
        default=[],
        metavar="REGEX",
        help="leave nodes whose name matches unquantized (repeatable), e.g. "
        r"'layer\.\d+/output/dense' for BERT's FFN output projections",
    )
    p.add_argument(
        "--min-agreement",
        type=float,
        default=DEFAULT_MIN_AGREEMENT,
        help=f"accuracy gate: fraction of {unit} that must match the fp32 graph "
        f"(default: {DEFAULT_MIN_AGREEMENT})",
    )
    p.add_argument(
        "--validation",
        type=Path,
        help='extra gate texts, JSON lines {"text": ...} (e.g. the dev split)',
    )


def _variant(args: argparse.Namespace) -> VariantRequest:
    return VariantRequest(
        optimize=args.optimize,
        quantize=args.quantize,
        per_channel=args.per_channel,
        keep_fp32=tuple(args.keep_fp32),
        min_agreement=args.min_agreement,
        validation=args.validation,
    )


def _ner_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("ner", help="export a BERT-CRF token classifier to an ONNX bundle")
    _add_checkpoint_arguments(p, "tag list")
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
    _add_variant_arguments(p, "word tags")


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
            variant=_variant(args),
        )
    )


def _postures_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("postures", help="export a Longformer multi-label classifier to a bundle")
    _add_checkpoint_arguments(p, "label list")
    p.add_argument(
        "--max-length",
        type=int,
        help="tokens per window incl. special tokens (default: min(model max, 4096))",
    )
    p.add_argument(
        "--stride", type=int, help="tokens shared by consecutive windows (default: max length / 8)"
    )
    p.add_argument(
        "--aggregation",
        choices=["max", "mean"],
        default="max",
        help="how window probabilities of a long document combine (default: max)",
    )
    p.add_argument(
        "--atol",
        type=float,
        default=1e-3,
        help="max abs probability difference ONNX vs PyTorch (default: 1e-3)",
    )
    p.add_argument(
        "--parity-lengths",
        type=lambda v: tuple(int(x) for x in v.split(",")),
        help="comma-separated lengths for the parity gate "
        "(default: 1,100,511,512,513,1500,4095 and the max)",
    )
    _add_variant_arguments(p, "(document, label) decisions at threshold 0.5")


def _run_postures(args: argparse.Namespace) -> None:
    from export.postures.exporter import PostureExportOptions, export_postures

    export_postures(
        PostureExportOptions(
            checkpoint=args.checkpoint,
            out=args.out,
            base=args.base,
            labels=args.labels,
            name=args.name,
            version=args.version,
            max_length=args.max_length,
            stride=args.stride,
            aggregation=args.aggregation,
            atol=args.atol,
            parity_lengths=args.parity_lengths,
            force=args.force,
            trust_checkpoint=args.trust_checkpoint,
            variant=_variant(args),
        )
    )


def _calibrate_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "calibrate",
        help="cross-validate threshold options of a posture bundle and ship the best",
        description="Cross-validate 0.5 / one global / per-class / per-class shrunk thresholds "
        "inside a validation split; the bundle ships the option with the best out-of-fold "
        "micro-F1 (ties go to the simpler). Writes a JSON + Markdown + PNG report.",
    )
    p.add_argument("--bundle", type=Path, required=True, help="posture bundle directory")
    p.add_argument(
        "--data",
        type=Path,
        required=True,
        help='validation split, JSON lines {"text": ..., "labels": [...]}',
    )
    p.add_argument(
        "--min-support",
        type=int,
        default=5,
        help="classes with fewer positives use the global threshold (default: 5)",
    )
    p.add_argument("--folds", type=int, default=5, help="cross-validation folds (default: 5)")
    p.add_argument("--seed", type=int, default=0, help="folds and bootstrap seed (default: 0)")
    p.add_argument(
        "--bootstrap", type=int, default=1000, help="bootstrap resamplings (default: 1000)"
    )
    p.add_argument(
        "--shrinkage",
        type=float,
        default=20.0,
        help="positives at which a class's own cut and the global one weigh the same in the "
        "shrunk option (default: 20)",
    )
    p.add_argument(
        "--report",
        type=Path,
        help="where to save the JSON report; the .md and the PNGs go beside it "
        "(default: BUNDLE/calibration_report.json)",
    )
    p.add_argument("--no-plots", action="store_true", help="skip the PNG pictures")


def _run_calibrate(args: argparse.Namespace) -> None:
    from export.calibration.options import Settings
    from export.postures.calibrate import CalibrationOptions, run_calibration

    if not args.data.is_file():
        raise ExportError(f"{args.data}: no such file")
    try:
        settings = Settings(
            folds=args.folds,
            seed=args.seed,
            draws=args.bootstrap,
            min_support=args.min_support,
            shrinkage=args.shrinkage,
        )
    except ValueError as exc:
        raise ExportError(str(exc)) from exc
    run_calibration(
        CalibrationOptions(
            bundle=args.bundle,
            data=args.data,
            settings=settings,
            report=args.report,
            plots=not args.no_plots,
        )
    )


COMMANDS = {"ner": _run_ner, "postures": _run_postures, "calibrate": _run_calibrate}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m export",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True)
    _ner_parser(sub)
    _postures_parser(sub)
    _calibrate_parser(sub)
    args = parser.parse_args(argv)
    try:
        COMMANDS[args.command](args)
    except ExportError as exc:
        print(f"export failed: {exc}", file=sys.stderr)
        return 1
    return 0
