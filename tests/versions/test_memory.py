"""The model-memory budget: the setting, else 80% of the cgroup limit, else none."""

from __future__ import annotations

from pathlib import Path

import pytest

from service.versions import memory


def test_the_setting_wins_then_the_cgroup_share(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(memory, "cgroup_limit_bytes", lambda: 1000 * memory.MB)
    assert memory.budget_bytes(300) == 300 * memory.MB
    assert memory.budget_bytes(None) == 800 * memory.MB
    monkeypatch.setattr(memory, "cgroup_limit_bytes", lambda: None)
    assert memory.budget_bytes(None) is None


def test_cgroup_files_max_means_no_limit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    v2 = tmp_path / "memory.max"
    monkeypatch.setattr(memory, "CGROUP_FILES", (v2,))
    assert memory.cgroup_limit_bytes() is None  # absent
    v2.write_text("max\n")
    assert memory.cgroup_limit_bytes() is None
    v2.write_text("2147483648\n")
    assert memory.cgroup_limit_bytes() == 2 * 1024**3


def test_rss_is_read() -> None:
    assert memory.rss_bytes() > 10 * memory.MB
