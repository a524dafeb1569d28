"""The checked-in gRPC stubs are what grpcio-tools generates from the checked-in proto."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from service.protocols.v2.proto import generate


def test_checked_in_stubs_are_current() -> None:
    assert generate.main(["--check"]) == 0


def test_a_stale_stub_fails_the_check(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (generate.PROTO, *generate.GENERATED):
        shutil.copy(generate.HERE / name, tmp_path / name)
    proto = tmp_path / generate.PROTO
    proto.write_text(proto.read_text().replace("bool live = 1;", "bool live = 1;\n  int32 x = 2;"))
    monkeypatch.setattr(generate, "HERE", tmp_path)
    assert generate.main(["--check"]) == 1
