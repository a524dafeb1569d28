"""The README stays short and points into the docs site; the site's nav names real pages."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]


def _nav_files(node: object) -> list[str]:
    if isinstance(node, str):
        return [node]
    if isinstance(node, list):
        return [f for item in node for f in _nav_files(item)]
    if isinstance(node, dict):
        return [f for value in node.values() for f in _nav_files(value)]
    return []


def test_readme_is_short_and_its_links_resolve() -> None:
    text = (ROOT / "README.md").read_text()
    assert len(text.splitlines()) <= 200
    links = re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text)
    local = [link for link in links if "://" not in link]
    assert len(local) >= 15
    missing = [link for link in local if not (ROOT / link).exists()]
    assert missing == []


def test_readme_states_the_two_commands_ci_runs() -> None:
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci/run").read_text().splitlines()
    assert "make run" in readme and "make test" in readme
    assert "make test" in ci and "make docs" in ci
    assert ci.index("make lint") < ci.index("make docs")


def test_every_nav_entry_is_a_page_and_every_page_is_in_the_nav() -> None:
    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text())
    nav = _nav_files(config["nav"])
    docs = ROOT / config["docs_dir"]
    assert [p for p in nav if not (docs / p).is_file()] == []
    pages = {str(p.relative_to(docs)) for p in docs.rglob("*.md")}
    assert pages - set(nav) == set()


def test_every_metric_the_pages_name_exists() -> None:
    """Hand-written pages explain metrics; a renamed or removed one must not linger there."""
    reference = (ROOT / "docs/reference/metrics.md").read_text()
    real = set(re.findall(r"\| `(infer_[a-z_]+)` \|", reference))
    assert len(real) > 10
    pages = [p for p in (ROOT / "docs").rglob("*.md") if "reference" not in p.parts]
    unknown = {
        (name, str(page.relative_to(ROOT)))
        for page in [*pages, ROOT / "README.md"]
        # recording rules (level:metric:operation) are not metrics of the registry
        for name in re.findall(r"(?<![:\w])infer_[a-z_]+(?![:\w])", page.read_text())
        if re.sub(r"_(bucket|sum|count)$", "", name) not in real
    }
    assert unknown == set()


def test_every_setting_the_pages_name_exists() -> None:
    from service.settings import Settings

    real = {f"INFER_{field.upper()}" for field in Settings.model_fields}
    pages = [p for p in (ROOT / "docs").rglob("*.md") if "reference" not in p.parts]
    unknown = {
        (name, str(page.relative_to(ROOT)))
        for page in [*pages, ROOT / "README.md"]
        for name in re.findall(r"\bINFER_[A-Z0-9_]*[A-Z0-9]\b", page.read_text())
        if name not in real
    }
    assert unknown == set()
