"""One service with REST and gRPC v2 on the default bundles, shared by this package's tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.protocols.v2_server import Server, v2_server


@pytest.fixture(scope="package")
def server(default_bundles_dir: Path) -> Iterator[Server]:
    with v2_server(default_bundles_dir) as running:
        yield running
