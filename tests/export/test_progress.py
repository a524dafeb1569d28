"""The build heartbeat: a long silent phase still prints a line every interval."""

from __future__ import annotations

import io
import itertools
import time

import pytest

from export.progress import Heartbeat


class _Stamped(io.StringIO):
    """Records when each line was written."""

    def __init__(self) -> None:
        super().__init__()
        self.stamps: list[tuple[float, str]] = []

    def write(self, s: str) -> int:
        if s.strip():
            self.stamps.append((time.monotonic(), s.strip()))
        return super().write(s)


def test_a_silent_phase_gets_a_line_every_interval() -> None:
    out = _Stamped()
    began = time.monotonic()
    with Heartbeat(interval=0.1, stream=out) as beat:
        beat.phase("training")
        time.sleep(1.0)  # a phase that prints nothing itself
        beat.phase("exporting")
        time.sleep(0.5)
    ended = time.monotonic()
    times = [began] + [t for t, _ in out.stamps] + [ended]
    # At most 5 intervals apart: slack for a busy machine, still far below the 1 s phase.
    assert max(b - a for a, b in itertools.pairwise(times)) < 0.5
    texts = [text for _, text in out.stamps]
    assert texts[0] == "training ..."
    assert sum("still training" in t for t in texts) >= 5
    assert "exporting ..." in texts and "still exporting" in texts[-1]


def test_no_line_after_the_block() -> None:
    out = _Stamped()
    with Heartbeat(interval=0.02, stream=out):
        time.sleep(0.05)
    count = len(out.stamps)
    time.sleep(0.1)
    assert len(out.stamps) == count


def test_interval_must_be_positive() -> None:
    with pytest.raises(ValueError, match="interval"):
        Heartbeat(interval=0)
