"""A default build starts from an empty work directory, keeping a checkpoint that lives in it."""

from __future__ import annotations

from pathlib import Path

from default_models.workdir import fresh_work_dir


def test_old_work_is_cleared_but_a_checkpoint_inside_it_survives(tmp_path: Path) -> None:
    old = tmp_path / "work" / "m"
    (old / "checkpoint").mkdir(parents=True)
    (old / "checkpoint" / "config.json").write_text("{}")
    (old / "stale.txt").write_text("x")
    work, staged = fresh_work_dir(tmp_path, "m", old / "checkpoint")
    assert work == old and sorted(p.name for p in work.iterdir()) == ["data"]
    assert staged is not None and (staged / "config.json").read_text() == "{}"
    again, none = fresh_work_dir(tmp_path, "m", None)
    assert none is None and not any((again / "data").iterdir())
