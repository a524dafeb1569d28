"""The generated reference pages (python -m docs_gen) match the code, and --check catches drift."""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from docs_gen import generate
from docs_gen.settings_page import CONFIG_ENV_MARK, config_env_errors, env_name
from service.settings import Settings

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def pages() -> dict[Path, str]:
    """Every generated file, rendered once."""
    return {rel: make() for rel, make in generate.all_pages(ROOT).items()}


@pytest.fixture
def fresh_root(tmp_path: Path, pages: dict[Path, str]) -> Path:
    """A copy of the generated files as they should be, to make stale on purpose."""
    for rel, text in pages.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text)
    return tmp_path


def _check(root: Path) -> list[str]:
    return generate.check(root, generate.all_pages(root))


def test_committed_files_are_current() -> None:
    assert _check(ROOT) == [], "run `python -m docs_gen` and commit the result"


def test_a_fresh_copy_passes(fresh_root: Path) -> None:
    assert _check(fresh_root) == []


def test_a_setting_missing_from_the_page_is_named(fresh_root: Path) -> None:
    page = fresh_root / "docs/reference/settings.md"
    text = page.read_text()
    row = next(line for line in text.splitlines() if line.startswith("| `INFER_MAX_QUEUE`"))
    page.write_text(text.replace(row + "\n", ""))
    (problem,) = _check(fresh_root)
    assert problem.startswith("docs/reference/settings.md: differs in")
    assert "INFER_MAX_QUEUE" in problem and "INFER_PORT" not in problem


def test_a_changed_metric_and_a_missing_flag_are_named(fresh_root: Path) -> None:
    metrics = fresh_root / "docs/reference/metrics.md"
    metrics.write_text(metrics.read_text().replace("`infer_ready`", "`infer_readiness`"))
    cli = fresh_root / "docs/reference/cli.md"
    text = cli.read_text()
    row = next(line for line in text.splitlines() if line.startswith("| `--target-precision"))
    cli.write_text(text.replace(row + "\n", ""))
    problems = "\n".join(_check(fresh_root))
    assert "docs/reference/metrics.md: differs in" in problems and "infer_ready" in problems
    assert "docs/reference/cli.md: differs in" in problems and "--target-precision" in problems


def test_the_command_line_fails_with_the_names(fresh_root: Path) -> None:
    schema = fresh_root / "docs/reference/bundle-schema.json"
    schema.write_text(schema.read_text().replace('"max_length"', '"max_len"', 1))
    (fresh_root / "docs/reference/openapi.json").unlink()
    done = subprocess.run(
        [sys.executable, "-m", "docs_gen", "--check", "--root", str(fresh_root)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 1
    assert "bundle-schema.json: differs in" in done.stderr and "max_len" in done.stderr
    assert "docs/reference/openapi.json: missing" in done.stderr


def test_writing_then_checking_round_trips(tmp_path: Path) -> None:
    shutil.copytree(ROOT / "k8s/base", tmp_path / "k8s/base")
    env = tmp_path / "k8s/base/config.env"
    env.write_text(env.read_text().split(CONFIG_ENV_MARK)[0])  # generated tail removed
    pages = generate.service_pages(tmp_path)
    assert any("config.env" in p for p in generate.check(tmp_path, pages))
    generate.write(tmp_path, pages)
    assert generate.check(tmp_path, generate.service_pages(tmp_path)) == []


def test_every_setting_every_metric_every_flag_is_documented(pages: dict[Path, str]) -> None:
    settings = pages[Path("docs/reference/settings.md")]
    for field in Settings.model_fields:
        assert f"| `{env_name(field)}` |" in settings
    from prometheus_client.metrics import MetricWrapperBase

    import service.metrics as metrics

    exposed = pages[Path("docs/reference/metrics.md")]
    defined = [m for m in vars(metrics).values() if isinstance(m, MetricWrapperBase)]
    assert len(defined) > 10
    for metric in defined:
        assert re.search(rf"\| `{metric._name}(_total)?` \|", exposed), metric._name
    from export.cli import build_parser

    cli = pages[Path("docs/reference/cli.md")]
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    assert {"ner", "classify", "postures", "calibrate"} <= set(sub.choices)
    for name, parser in sub.choices.items():
        assert f"`python -m export {name}`" in cli
        for action in parser._actions:
            if isinstance(action, argparse._HelpAction):
                continue
            for option in action.option_strings:
                assert f"`{option}" in cli or f", {option}" in cli, (name, option)


def test_config_env_keys_and_values_are_checked_against_settings() -> None:
    good = (ROOT / "k8s/base/config.env").read_text()
    assert config_env_errors(good) == []
    bad = good + "INFER_MAX_QEUE=5\nINFER_PORT=0\nINFER_PROVIDERS=CPUExecutionProvider\n"
    errors = config_env_errors(bad)
    assert [e.split(" ")[0] for e in errors] == [
        "INFER_MAX_QEUE",
        "INFER_PORT",
        "INFER_PROVIDERS",
    ]
    assert "no such setting" in errors[0]


def test_service_pages_import_no_torch() -> None:
    code = (
        "import sys\n"
        "from docs_gen.generate import service_pages\n"
        "for make in service_pages().values():\n"
        "    make()\n"
        "assert 'torch' not in sys.modules, 'torch imported'\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
