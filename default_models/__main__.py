"""``python -m default_models [ner] [postures] [intent] [tfidf] [ensemble] [joint] [--force]
[--sequential]``: build the default bundles if missing (each chain in its own process, side by
side: see default_models.jobs)."""

from __future__ import annotations

import argparse
from pathlib import Path

from default_models.build import DEFAULT_ROOT
from default_models.jobs import MODELS, BuildRequest, build


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m default_models", description=__doc__)
    parser.add_argument("models", nargs="*", default=["ner"], choices=MODELS)
    parser.add_argument("--root", type=Path, default=DEFAULT_ROOT, help="cache directory")
    parser.add_argument("--force", action="store_true", help="rebuild even if cached")
    parser.add_argument("--epochs", type=int, default=3, help="NER training epochs")
    parser.add_argument(
        "--sequential",
        action="store_true",
        help="build one after another in this process (default: each bundle in its own "
        "process, all at once; the trained weights do not depend on it)",
    )
    parser.add_argument(
        "--posture-checkpoint",
        type=Path,
        help="a posture checkpoint trained by this recipe: export, calibrate and evaluate it "
        "instead of training (e.g. after a calibration change)",
    )
    parser.add_argument(
        "--intent-checkpoint",
        type=Path,
        help="an intent checkpoint trained by this recipe: export, calibrate and evaluate it",
    )
    return parser


def main() -> None:
    args = build_parser().parse_args()
    request = BuildRequest(
        models=tuple(args.models),
        root=args.root,
        force=args.force,
        ner_epochs=args.epochs,
        posture_checkpoint=args.posture_checkpoint,
        intent_checkpoint=args.intent_checkpoint,
    )
    build(request, parallel=not args.sequential)


if __name__ == "__main__":
    main()
