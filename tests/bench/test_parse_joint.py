"""``python -m bench.parse_joint``: refuses a bundles directory without the three bundles before
starting anything, and its caption names the CPU and what each bundle ships."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.parse_joint import caption, main, table


def test_a_missing_bundle_stops_the_run_naming_it(tmp_path: Path) -> None:
    with pytest.raises(SystemExit) as stopped:
        main(["--bundles", str(tmp_path), "--requests", "1"])
    message = str(stopped.value)
    assert str(tmp_path / "intent-food") in message and "--bundles ROOT/bundles" in message


def test_the_caption_and_table_are_ready_to_paste() -> None:
    shipped = {"intent-food": "int8-static", "ner-food": "int8-static", "nlu-food": "fp32"}
    text = caption("AMD EPYC [avx2 avx512f]", shipped, ("1.0/1.0/1.0", "2.0/1.5/1.1"), 300)
    assert "AMD EPYC [avx2 avx512f]" in text and "`nlu-food` fp32" in text
    assert "300 requests per load" in text and "load average 1.0/1.0/1.0 before" in text
    row = {"path": "joint (nlu-food)", "c": 32, "p50_ms": 12.34, "p95_ms": 56.78}
    lines = table([{**row, "per_s": 80.4, "per_cpu_s": 201.6}]).splitlines()
    assert lines[2] == "| joint (nlu-food) | 32 | 12.3 | 56.8 | 80 | 202 |"
