"""The default build's parallel chains: which processes run, and how a failure ends them."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

from default_models import jobs
from default_models.jobs import BuildRequest, run_side_by_side


def _planned(
    monkeypatch: pytest.MonkeyPatch, models: tuple[str, ...], parallel: bool
) -> list[object]:
    calls: list[object] = []
    monkeypatch.setattr(jobs, "_run_chains", lambda _, chains: calls.append(list(chains)))
    monkeypatch.setattr(jobs, "build_here", lambda request: calls.append(request.models))
    jobs.build(BuildRequest(models=models, root=Path("x")), parallel=parallel)
    return calls


def test_several_builds_run_side_by_side_one_process_each(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert _planned(monkeypatch, ("ner", "postures", "intent"), True) == [
        [("ner",), ("postures",), ("intent",)]
    ]
    assert _planned(monkeypatch, ("intent", "ner"), True) == [[("ner",), ("intent",)]]


@pytest.mark.parametrize(
    ("models", "parallel"), [(("ner", "postures", "intent"), False), (("postures",), True)]
)
def test_sequential_or_a_single_build_runs_in_this_process(
    monkeypatch: pytest.MonkeyPatch, models: tuple[str, ...], parallel: bool
) -> None:
    assert _planned(monkeypatch, models, parallel) == [models]


def test_each_chain_is_given_only_its_own_options() -> None:
    request = BuildRequest(
        models=("ner", "postures", "intent"),
        root=Path("/r"),
        force=True,
        posture_checkpoint=Path("/p"),
        intent_checkpoint=Path("/i"),
    )
    assert request.arguments(("postures",)) == [
        "postures", "--root", "/r", "--sequential", "--epochs", "3", "--force",
        "--posture-checkpoint", "/p",
    ]  # fmt: skip
    ner = request.arguments(("ner",))
    assert "--intent-checkpoint" not in ner and "--posture-checkpoint" not in ner


def test_output_lines_carry_their_chain(capsys: pytest.CaptureFixture[str]) -> None:
    run_side_by_side(
        {
            "a": [sys.executable, "-c", "print('one'); print('two')"],
            "b": [sys.executable, "-c", "import sys; print('err', file=sys.stderr)"],
        }
    )
    out = capsys.readouterr().out.splitlines()
    assert {"[a] one", "[a] two", "[b] err"} <= set(out)
    assert out.index("[a] one") < out.index("[a] two")


def test_a_failing_chain_stops_the_other_and_is_named() -> None:
    began = time.monotonic()
    with pytest.raises(SystemExit, match="broken exited with 3"):
        run_side_by_side(
            {
                "slow": [sys.executable, "-c", "import time; time.sleep(60)"],
                "broken": [sys.executable, "-c", "raise SystemExit(3)"],
            }
        )
    assert time.monotonic() - began < 30  # the sleeper was terminated, not waited for


def test_a_second_build_of_one_model_waits_for_the_first(tmp_path: Path) -> None:
    """Two builds into one root (make run beside the test fixture) must not share a work dir."""
    import threading
    import time

    from default_models.jobs import building

    order: list[str] = []
    first_in = threading.Event()

    def first() -> None:
        with building(tmp_path, "ner"):
            first_in.set()
            time.sleep(0.3)
            order.append("first done")

    thread = threading.Thread(target=first)
    thread.start()
    first_in.wait()
    with building(tmp_path, "ner"):
        order.append("second in")
    thread.join()
    assert order == ["first done", "second in"]
    with building(tmp_path, "postures"):  # another model is not held up
        pass
