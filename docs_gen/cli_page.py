"""docs/reference/cli.md: every option of every command line, read from its argparse parser.

Each CLI exposes ``build_parser()``; sub-commands (``python -m export ner|classify|...``) are found
by walking the parser's sub-parser actions, so a new family or flag appears on the next generation.
Importing the export CLI imports torch: this page is generated last, in the same process.
"""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Iterator

from docs_gen.markdown import HEADER, code, table

# (module with build_parser(), what it is for)
CLIS = (
    ("export.cli", "Export a trained checkpoint to a bundle; calibrate a classifier bundle."),
    ("service.batch.__main__", "Score a JSON-lines corpus with one bundle (resumable, shardable)."),
    ("default_models.__main__", "Build the built-in default bundles."),
    ("bench.run", "The benchmark run (`make bench`, `make bench-quick`)."),
)


def _subcommands(
    parser: argparse.ArgumentParser,
) -> Iterator[tuple[str, argparse.ArgumentParser, str]]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {a.dest: a.help or "" for a in action._choices_actions}
            for name, sub in action.choices.items():
                yield name, sub, helps.get(name, "")


def _default(action: argparse.Action) -> str:
    if action.required or isinstance(action, argparse._HelpAction):
        return "required" if action.required else ""
    if isinstance(action, argparse._StoreTrueAction | argparse._StoreFalseAction):
        return ""
    if action.default is None or action.default is argparse.SUPPRESS:
        return ""
    value = action.default
    if isinstance(value, list | tuple):
        return code(" ".join(str(v) for v in value))
    return code(value)


def _options(parser: argparse.ArgumentParser) -> str:
    rows = []
    for action in parser._actions:
        if isinstance(action, argparse._HelpAction | argparse._SubParsersAction):
            continue
        names = ", ".join(action.option_strings) or action.dest
        if action.option_strings and action.nargs != 0:
            metavar = action.metavar if isinstance(action.metavar, str) else None
            names += " " + (metavar or action.dest.upper())
        elif not action.option_strings:
            names = action.metavar if isinstance(action.metavar, str) else action.dest
            if action.nargs in ("*", "+"):
                names += " …"
        choices = ", ".join(str(c) for c in action.choices) if action.choices else ""
        helptext = (
            (action.help or "") % {"default": action.default, "prog": parser.prog}
            if action.help
            else ""
        )
        rows.append([code(names), _default(action), choices, helptext])
    if not rows:
        return "Options: see each sub-command below.\n" if any(_subcommands(parser)) else ""
    return table(["option", "default", "choices", "meaning"], rows)


def _section(parser: argparse.ArgumentParser, level: int, summary: str) -> str:
    out = [f"{'#' * level} `{parser.prog}`\n"]
    if summary:
        out.append(summary + "\n")
    out.append(_options(parser))
    for _, sub, helptext in _subcommands(parser):
        out.append(_section(sub, level + 1, helptext))
    return "\n".join(out)


def page() -> str:
    parts = [
        HEADER.format(source="each CLI's build_parser()"),
        "# Command lines\n",
        "Every option of every command line, as its parser defines it. `--help` on any of them "
        "prints the same.\n",
    ]
    for module_name, summary in CLIS:
        module = importlib.import_module(module_name)
        parser: argparse.ArgumentParser = module.build_parser()
        parts.append(_section(parser, 2, summary))
    return "\n".join(parts)
