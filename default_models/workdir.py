"""The work directory of a default build: emptied for every build, with a given checkpoint kept."""

from __future__ import annotations

import shutil
from pathlib import Path


def fresh_work_dir(root: Path, bundle: str, checkpoint: Path | None) -> tuple[Path, Path | None]:
    """An empty ``root/work/<bundle>`` with ``data/``; a given ``checkpoint`` is first copied
    aside (it may live in the work directory being cleared) and that copy is returned."""
    work = root / "work" / bundle
    staged = None
    if checkpoint is not None:
        staged = root / "work" / f".{bundle}-checkpoint"
        shutil.rmtree(staged, ignore_errors=True)
        shutil.copytree(checkpoint, staged)
    shutil.rmtree(work, ignore_errors=True)
    (work / "data").mkdir(parents=True)
    return work, staged
