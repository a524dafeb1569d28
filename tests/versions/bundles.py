"""Versions of one bundle for tests: a copy of a bundle directory with another manifest
``version`` (the sha256 covers the files, not the manifest), optionally broken on purpose."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from service.bundle import MANIFEST_FILE


def edit_manifest(bundle: Path, edit: Callable[[dict[str, Any]], None]) -> None:
    path = bundle / MANIFEST_FILE
    data = json.loads(path.read_text())
    edit(data)
    path.write_text(json.dumps(data, indent=2))


def publish_version(source: Path, root: Path, version: str, breakage: str | None = None) -> Path:
    """``root/<name>/<version>``: ``source`` as that version, written to a hidden staging
    directory and renamed into place (as exports do). ``breakage``: "sha256" (the graph's
    bytes changed) or "selfcheck" (the stored sample's outputs changed)."""
    name = json.loads((source / MANIFEST_FILE).read_text())["name"]
    target = root / name / version
    staging = root / name / f".{version}.partial"
    shutil.copytree(source, staging)

    def set_version(data: dict[str, Any]) -> None:
        data["version"] = version
        if breakage == "selfcheck":  # every graph's sample: a bundle may carry several graphs
            for sample in [
                data["selfcheck"],
                *(g["selfcheck"] for g in data.get("int8_graphs", [])),
            ]:
                rows = sample["outputs"][0]
                rows[0] = [value + 50.0 for value in rows[0]]

    edit_manifest(staging, set_version)
    if breakage == "sha256":
        onnx = json.loads((staging / MANIFEST_FILE).read_text())["onnx"]["file"]
        with (staging / onnx).open("ab") as f:
            f.write(b"\0corrupted")
    staging.rename(target)
    return target
