"""Write (or check) the generated reference pages of the docs site and k8s/base/config.env's tail.

``python -m docs_gen`` rewrites them from the code: settings (pydantic ``Settings``), metrics (the
Prometheus registry), the bundle manifest schema (pydantic), the OpenAPI document (the FastAPI app)
and every CLI's options (their argparse parsers). ``--check`` writes nothing and exits 1 naming
each file that differs, and inside it what differs (a setting, flag, metric or field), so CI fails
when one is added without regenerating. Service pages come first and import no torch; the CLI page
(the export CLI imports torch) comes last.
"""

from __future__ import annotations

import argparse
import difflib
import re
import sys
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = Path("docs/reference")
CONFIG_ENV = Path("k8s/base/config.env")


def service_pages(root: Path = ROOT) -> dict[Path, Callable[[], str]]:
    """Pages generated from the serving code only (no torch)."""
    from docs_gen import metrics_page, schemas, settings_page

    current = root / CONFIG_ENV
    env_text = current.read_text() if current.exists() else ""
    return {
        REFERENCE / "settings.md": settings_page.page,
        REFERENCE / "metrics.md": metrics_page.page,
        REFERENCE / "bundle-schema.md": schemas.bundle_page,
        REFERENCE / "bundle-schema.json": schemas.bundle_json,
        REFERENCE / "openapi.json": schemas.openapi_json,
        CONFIG_ENV: lambda: settings_page.config_env(env_text),
    }


def all_pages(root: Path = ROOT) -> dict[Path, Callable[[], str]]:
    from docs_gen import cli_page

    return {**service_pages(root), REFERENCE / "cli.md": cli_page.page}


# What a changed line is about: a table's first cell, a JSON key, an env variable.
_NAME = re.compile(r'^\|\s*`+\s*([^`|]+?)\s*`+|^\s*"([^"]+)":|^#?\s*([A-Z][A-Z0-9_]+)=')


def differing_names(old: str, new: str) -> list[str]:
    names: list[str] = []
    for line in difflib.unified_diff(old.splitlines(), new.splitlines(), lineterm="", n=0):
        if line.startswith(("---", "+++", "@@")):
            continue
        match = _NAME.match(line[1:])
        name = next((g for g in match.groups() if g), None) if match else None
        label = name or line[1:].strip()[:60]
        if label and label not in names:
            names.append(label)
    return names


def check(root: Path, pages: dict[Path, Callable[[], str]]) -> list[str]:
    """One line per stale file, naming what differs; empty when everything is current."""
    problems = []
    for rel, make in pages.items():
        path = root / rel
        expected = make()
        if not path.exists():
            problems.append(f"{rel}: missing")
            continue
        actual = path.read_text()
        if actual != expected:
            problems.append(f"{rel}: differs in {', '.join(differing_names(actual, expected))}")
    from docs_gen.settings_page import config_env_errors

    env = root / CONFIG_ENV
    if env.exists():
        problems += [f"{CONFIG_ENV}: {e}" for e in config_env_errors(env.read_text())]
    return problems


def write(root: Path, pages: dict[Path, Callable[[], str]]) -> None:
    for rel, make in pages.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(make())
        print(f"wrote {rel}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m docs_gen", description=(__doc__ or "").splitlines()[0]
    )
    parser.add_argument("--check", action="store_true", help="fail if a file is out of date")
    parser.add_argument("--root", type=Path, default=ROOT, help="repository root to write/check")
    parser.add_argument(
        "--service-only", action="store_true", help="only the pages that import no torch"
    )
    args = parser.parse_args(argv)
    pages = service_pages(args.root) if args.service_only else all_pages(args.root)
    if not args.check:
        write(args.root, pages)
        return 0
    problems = check(args.root, pages)
    for line in problems:
        print(f"out of date (run python -m docs_gen): {line}", file=sys.stderr)
    return 1 if problems else 0
