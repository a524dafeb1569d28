"""The export command line is generated from the typed options and stays what it was.

``data/cli_flags_before_issue28.json`` was captured from the hand-written argparse parser of
``export/cli.py`` before the options became pydantic models (issue 28): every subcommand's flags,
dests, actions, defaults, choices, metavars, help texts and argument types.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import pytest

from export import api
from export.calibration.command import CalibrateOptions
from export.cli import build_parser, main
from export.cli_options import options_from, to_argv
from export.errors import ExportError
from export.families import EXPORT_FAMILIES
from export.variants.request import VariantRequest
from families.classify.export import ClassifyOptions
from families.ner.export import NerOptions
from families.postures.export import PostureOptions

BEFORE = json.loads((Path(__file__).parent / "data" / "cli_flags_before_issue28.json").read_text())
ROOT = Path(__file__).resolve().parents[2]


def _subparsers(parser: argparse.ArgumentParser) -> argparse._SubParsersAction[Any]:
    return next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))


def _describe(action: argparse.Action) -> dict[str, Any]:
    default = action.default
    return {
        "flags": action.option_strings,
        "dest": action.dest,
        "action": type(action).__name__,
        "default": str(default) if isinstance(default, Path) else default,
        "choices": list(action.choices) if action.choices else None,
        "required": action.required,
        "nargs": action.nargs,
        "metavar": action.metavar,
        "help": action.help,
        "type": getattr(action.type, "__name__", None) if action.type else None,
    }


def _generated() -> dict[str, dict[str, Any]]:
    sub = _subparsers(build_parser())
    helps = {c.dest: c.help for c in sub._choices_actions}
    return {
        name: {
            "help": helps[name],
            "description": p.description,
            "options": [
                _describe(a) for a in p._actions if not isinstance(a, argparse._HelpAction)
            ],
        }
        for name, p in sub.choices.items()
    }


def test_the_subcommands_are_the_registered_families_and_calibrate() -> None:
    assert list(_generated()) == [f.command for f in EXPORT_FAMILIES] + ["calibrate"]
    assert set(BEFORE) <= set(_generated())  # a family registered since adds its own command


def test_calibrate_runs_the_calibration_of_the_bundles_family(
    tiny_bundle: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "dev.jsonl"
    data.write_text('{"text": "a", "labels": []}\n')
    assert not api.FAMILIES["ner"].calibrates
    assert main(["calibrate", "--bundle", str(tiny_bundle), "--data", str(data)]) == 1
    takes = " or ".join(sorted(f.task() for f in EXPORT_FAMILIES if f.calibrates))
    assert "classify" in takes and "postures" in takes
    assert f"is a ner bundle; calibration takes {takes} bundles" in capsys.readouterr().err


# Options added after the capture (issue 23: per-class automation, docs/review.md).
ADDED_SINCE = {
    "calibrate": {"--automation-f1", "--review-precision", "--review-miss-rate", "--no-automation"},
    # several INT8 graphs in one bundle: every command with the variant options
    **{
        command: {"--int8-also"}
        for command, parser in BEFORE.items()
        if any(o["flags"][0] == "--int8-format" for o in parser["options"])
    },
}


@pytest.mark.parametrize("command", sorted(BEFORE))
def test_every_option_is_what_the_hand_written_parser_declared(command: str) -> None:
    before, after = BEFORE[command], _generated()[command]
    assert after["help"] == before["help"]
    assert after["description"] == before["description"]
    old = {o["flags"][0]: o for o in before["options"]}
    new = {o["flags"][0]: o for o in after["options"]}
    assert sorted(set(new) - ADDED_SINCE.get(command, set())) == sorted(old)
    assert ADDED_SINCE.get(command, set()) <= set(new)
    for flag, option in old.items():
        expected = dict(option)
        if flag == "--parity-lengths":  # was a lambda; its parsing is checked below
            expected["type"] = new[flag]["type"]
        assert new[flag] == expected, flag
    added = ADDED_SINCE.get(command, set())
    assert [f for f in new if f not in added] == list(old)  # the order --help lists them in


def test_parity_lengths_parse_to_a_tuple_of_ints() -> None:
    args = build_parser().parse_args(
        ["postures", "--checkpoint", "c", "--out", "o", "--parity-lengths", "1,513,600"]
    )
    options = options_from(PostureOptions, args)
    assert options.parity_lengths == (1, 513, 600)
    assert options.variant == VariantRequest()


def _round_trip(command: str, options: Any) -> Any:
    model = CalibrateOptions if command == "calibrate" else api.family_of(command).options
    return options_from(model, build_parser().parse_args([command, *to_argv(options)]))


@pytest.mark.parametrize(
    ("command", "options"),
    [
        ("ner", NerOptions(checkpoint=Path("c"), out=Path("o"))),
        (
            "ner",
            NerOptions(
                checkpoint=Path("c/model.pt"),
                out=Path("o"),
                base=Path("b"),
                labels=Path("l.txt"),
                name="n",
                version="7",
                force=True,
                trust_checkpoint=True,
                max_length=64,
                stride=8,
                atol=1e-5,
                head="softmax",
                encoder_prefix="bert",
                constrain_transitions=False,
                subtokens="all",
                crf_positions="cls+words",
                variant=VariantRequest(
                    optimize=True,
                    quantize="int8-static",
                    calibration="entropy",
                    percentile=99.9,
                    fallback_fp32=True,
                    int8_format="u8u8",
                    int8_also=("u8s8", "u8s8-reduced"),
                    per_channel=False,
                    keep_fp32=(r"layer\.\d+/output/dense", "pooler"),
                    keep_sensitive=False,
                    min_agreement=0.95,
                    validation=Path("dev.jsonl"),
                ),
            ),
        ),
        (
            "classify",
            ClassifyOptions(
                checkpoint=Path("c"),
                out=Path("o"),
                problem_type="single",
                abstain_threshold=0.4,
                aggregation="mean",
                parity_lengths=(1, 100),
            ),
        ),
        ("postures", PostureOptions(checkpoint=Path("c"), out=Path("o"), aggregation="mean")),
        (
            "calibrate",
            CalibrateOptions(
                bundle=Path("b"),
                data=Path("d.jsonl"),
                target_precision=0.85,
                folds=3,
                shrinkage=5.5,
                no_plots=True,
            ),
        ),
    ],
)
def test_to_argv_parses_back_to_the_same_options(command: str, options: Any) -> None:
    assert _round_trip(command, options) == options


def test_defaults_are_left_out_of_argv() -> None:
    assert to_argv(NerOptions(checkpoint=Path("c"), out=Path("o"))) == [
        "--checkpoint",
        "c",
        "--out",
        "o",
    ]


def test_the_api_refuses_an_unknown_family_and_foreign_fields(tmp_path: Path) -> None:
    with pytest.raises(ExportError, match="no export family 'no-such-family'"):
        api.export_bundle("no-such-family", {"checkpoint": tmp_path, "out": tmp_path / "o"})
    with pytest.raises(ExportError, match="problem_type"):
        api.options_for("ner", checkpoint=tmp_path, out=tmp_path / "o", problem_type="multi")
    assert not (tmp_path / "o").exists()


def test_a_bad_variant_fails_before_the_checkpoint_is_read(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["ner", "--checkpoint", str(tmp_path / "missing"), "--out", str(tmp_path / "o")]
    assert main([*argv, "--fallback-fp32"]) == 1
    assert "--fallback-fp32 only applies with --quantize" in capsys.readouterr().err
    with pytest.raises(ExportError, match="only applies with --quantize"):
        api.export_bundle(
            "ner",
            NerOptions(
                checkpoint=tmp_path / "missing",
                out=tmp_path / "o",
                variant=VariantRequest(fallback_fp32=True),
            ),
        )


def test_families_read_typed_options_never_argparse() -> None:
    for path in sorted((ROOT / "families").rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        assert "argparse" not in text, path
        assert "getattr(args" not in text, path
        assert "schema_version_for" not in text, path  # the driver sets schema_version


def _without_timings(manifest: dict[str, Any]) -> dict[str, Any]:
    def strip(value: Any) -> Any:
        if isinstance(value, dict):
            return {
                k: strip(v)
                for k, v in value.items()
                if k not in ("created_at", "duration_s", "onnx_s", "torch_s", "source")
            }
        if isinstance(value, list):
            return [strip(v) for v in value]
        return value

    return dict(strip(manifest))


@pytest.mark.slow
def test_the_api_and_the_command_line_write_the_same_bundle(
    tiny_checkpoint: Path, tmp_path: Path
) -> None:
    from service.bundle import sha256_of

    argv = ["--checkpoint", str(tiny_checkpoint / "model.pt"), "--base"]
    argv += [str(tiny_checkpoint / "base"), "--labels", str(tiny_checkpoint / "labels.txt")]
    argv += ["--max-length", "16", "--stride", "4", "--name", "tiny", "--subtokens", "all"]
    assert main(["ner", *argv, "--out", str(tmp_path / "cli")]) == 0
    options = NerOptions(
        checkpoint=tiny_checkpoint / "model.pt",
        base=tiny_checkpoint / "base",
        labels=tiny_checkpoint / "labels.txt",
        out=tmp_path / "api",
        max_length=16,
        stride=4,
        name="tiny",
        subtokens="all",
    )
    assert api.export_bundle("ner", options) == tmp_path / "api"
    for name in ("model.onnx", "tokenizer.json"):
        assert sha256_of(tmp_path / "api" / name) == sha256_of(tmp_path / "cli" / name)
    cli, py = (json.loads((tmp_path / d / "bundle.json").read_text()) for d in ("cli", "api"))
    assert _without_timings(py) == _without_timings(cli)
    assert py["ner"]["subtokens"] == "all" and py["name"] == "tiny"
