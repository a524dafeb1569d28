"""``python -m default_models [ner] [--force]``: build the built-in default bundles if missing."""

from __future__ import annotations

import argparse
from pathlib import Path

from default_models.build import DEFAULT_ROOT, build_ner


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m default_models", description=__doc__)
    parser.add_argument("models", nargs="*", default=["ner"], choices=["ner"])
    parser.add_argument("--root", type=Path, default=DEFAULT_ROOT, help="cache directory")
    parser.add_argument("--force", action="store_true", help="rebuild even if cached")
    parser.add_argument("--epochs", type=int, default=3)
    args = parser.parse_args()
    if "ner" in args.models:
        build_ner(args.root, force=args.force, epochs=args.epochs)


main()
