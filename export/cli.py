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

from export import api
from export.calibration.command import DESCRIPTION, CalibrateOptions
from export.cli_options import add_options, options_from
from export.errors import ExportError


def build_parser() -> argparse.ArgumentParser:
    """One subcommand per registered family (options generated from its model) + calibrate."""
    parser = argparse.ArgumentParser(
        prog="python -m export",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True)
    for family in api.FAMILIES.values():
        add_options(sub.add_parser(family.command, help=family.summary), family.options)
    calibrate = sub.add_parser(
        "calibrate",
        help="calibrate a classifier bundle's decisions on a validation split",
        description=DESCRIPTION,
        epilog=" ".join(
            f"{f.task()} bundles: {f.calibration_help}"
            for f in api.FAMILIES.values()
            if f.calibration_help
        )
        or None,
    )
    add_options(calibrate, CalibrateOptions)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "calibrate":
            api.calibrate(options_from(CalibrateOptions, args))
        else:
            family = api.family_of(args.command)
            api.export_bundle(args.command, options_from(family.options, args))
    except ExportError as exc:
        print(f"export failed: {exc}", file=sys.stderr)
        return 1
    return 0
