"""``python -m default_models [ner] [postures] [intent] [--force]``: build the default bundles if
missing."""

from __future__ import annotations

import argparse
from pathlib import Path

from default_models.build import DEFAULT_ROOT, build_ner
from default_models.intent_build import build_intent
from default_models.posture_build import build_postures


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m default_models", description=__doc__)
    parser.add_argument("models", nargs="*", default=["ner"], choices=["ner", "postures", "intent"])
    parser.add_argument("--root", type=Path, default=DEFAULT_ROOT, help="cache directory")
    parser.add_argument("--force", action="store_true", help="rebuild even if cached")
    parser.add_argument("--epochs", type=int, default=3, help="NER training epochs")
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
    args = parser.parse_args()
    if "ner" in args.models:
        build_ner(args.root, force=args.force, epochs=args.epochs)
    if "postures" in args.models:
        build_postures(args.root, force=args.force, checkpoint=args.posture_checkpoint)
    if "intent" in args.models:
        build_intent(args.root, force=args.force, checkpoint=args.intent_checkpoint)


main()
