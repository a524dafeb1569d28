"""Command line of the export stage.

python -m export ner        token tagger (CRF or softmax head, any encoder) -> bundle
python -m export classify   sequence classifier (any encoder, multi- or single-label) -> bundle
python -m export postures   Longformer multi-label classifier checkpoint -> posture bundle
python -m export calibrate  cross-validated thresholds (multi-label) or abstain threshold
                            (single-label) of a classifier bundle from a validation split
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from export.driver import export_bundle
from export.errors import ExportError
from export.family import ExportFamily
from export.variants.graphs import INT8_SCHEMES
from export.variants.request import (
    DEFAULT_CALIBRATION,
    DEFAULT_INT8_FORMAT,
    DEFAULT_MIN_AGREEMENT,
    DEFAULT_PERCENTILE,
)
from families.classify.export import ClassifyFamily
from families.ner.export import NerFamily
from families.postures.export import PostureFamily

# Export commands, one per model family. A new family adds one line here.
FAMILIES: dict[str, ExportFamily[Any]] = {
    f.command: f for f in (NerFamily(), ClassifyFamily(), PostureFamily())
}


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
        choices=["int8", "int8-static"],
        help="ship an INT8 graph if it passes the gate (format: --int8-format). int8: dynamic "
        "activation scales, computed per call, so a text's answer can depend on its batch-mates; "
        "int8-static: activation ranges calibrated at export on the --validation texts, so it "
        "cannot",
    )
    p.add_argument(
        "--calibration",
        choices=["minmax", "percentile", "entropy"],
        default=DEFAULT_CALIBRATION,
        help=f"int8-static: how activation ranges are cut (default: {DEFAULT_CALIBRATION})",
    )
    p.add_argument(
        "--calibration-percentile",
        dest="percentile",
        type=float,
        default=DEFAULT_PERCENTILE,
        help="int8-static with --calibration percentile: share of activation values inside the "
        f"range, in percent (default: {DEFAULT_PERCENTILE:g})",
    )
    p.add_argument(
        "--fallback-fp32",
        action="store_true",
        help="when INT8 fails the accuracy gate, ship the fp32 graph and record the reason in "
        "bundle.json (variant.quantization_refused) instead of failing the export",
    )
    p.add_argument(
        "--int8-format",
        choices=list(INT8_SCHEMES),
        default=DEFAULT_INT8_FORMAT,
        help="; ".join(f"{name}: {s.summary}" for name, s in INT8_SCHEMES.items())
        + f" (default: {DEFAULT_INT8_FORMAT})",
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
        "--no-keep-sensitive",
        dest="keep_sensitive",
        action="store_false",
        help="refuse at once when the fully quantized graph fails the gate (default: keep its "
        "most sensitive products fp32, 1, 2, 4, ... up to half of them, until it passes)",
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
        help='extra gate texts, JSON lines {"text": ...} (e.g. the dev split); int8-static '
        "also calibrates on them",
    )


def _family_parser(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], family: ExportFamily[Any]
) -> None:
    p = sub.add_parser(family.command, help=family.summary)
    _add_checkpoint_arguments(p, "label list")
    p.add_argument(
        "--max-length",
        type=int,
        help="tokens per window incl. special tokens "
        f"(default: min(model max, {family.max_length_cap}))",
    )
    p.add_argument(
        "--stride",
        type=int,
        help="tokens shared by consecutive windows "
        f"(default: max length / {family.stride_divisor})",
    )
    p.add_argument(
        "--atol",
        type=float,
        default=family.default_atol,
        help=f"{family.atol_help} (default: {family.default_atol:g})",
    )
    family.add_arguments(p)
    _add_variant_arguments(p, family.agreement_unit)


def _calibrate_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "calibrate",
        help="calibrate a classifier bundle's decisions on a validation split",
        description="Multi-label (posture or classify) bundles: cross-validate 0.5 / one global / "
        "per-class / per-class shrunk thresholds inside a validation split; the bundle ships the "
        "option with the best out-of-fold micro-F1 (ties go to the simpler). Writes a JSON + "
        "Markdown + PNG report. Single-label bundles: the abstain threshold, the lowest cut on "
        "the top probability whose precision among answered texts reaches --target-precision "
        "(out-of-fold precision and coverage in the JSON report).",
    )
    p.add_argument("--bundle", type=Path, required=True, help="classifier bundle directory")
    p.add_argument(
        "--data",
        type=Path,
        required=True,
        help='validation split, JSON lines {"text": ..., "labels": [...]} (single-label: one '
        "label, or [] for none of the model's classes)",
    )
    p.add_argument(
        "--target-precision",
        type=float,
        default=0.9,
        help="single-label: precision among answered texts the abstain threshold must reach "
        "(default: 0.9)",
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
    from families.classify.calibrate import run_calibration
    from families.classify.validation import CalibrationOptions

    if not args.data.is_file():
        raise ExportError(f"{args.data}: no such file")
    if not 0 < args.target_precision <= 1:
        raise ExportError(f"--target-precision {args.target_precision} must be in (0, 1]")
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
            target_precision=args.target_precision,
        )
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m export",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True)
    for family in FAMILIES.values():
        _family_parser(sub, family)
    _calibrate_parser(sub)
    args = parser.parse_args(argv)
    try:
        if args.command == "calibrate":
            _run_calibrate(args)
        else:
            export_bundle(FAMILIES[args.command], args)
    except ExportError as exc:
        print(f"export failed: {exc}", file=sys.stderr)
        return 1
    return 0
