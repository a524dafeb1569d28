"""Build several default bundles at once: independent chains in parallel processes.

Training these small models keeps only about 1.4 of 2 cores busy (small matrices, Python between
steps), so the three builds one after another left most of a core idle for 14 minutes. Each
build now runs in its own process with one torch thread, all three at once: a single thread per
model loses little (the posture model's short crops gain nothing from a second thread), and the
operating system shares the cores among them, so the CPU work ends about when the longest build
would. Their output is interleaved line by line, each line prefixed with its build.

Every build trains with ``TRAIN_THREADS`` intra-op threads whichever way it runs (alone, side by
side, inside the test suite), because the thread count changes the order of float reductions and
so the trained weights: one setting makes a bundle the same on any core count.
"""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

# "ensemble" (the posture ensemble over postures-legal and postures-tfidf) is no chain of its
# own: it runs after the chains, once its member bundles exist (default_models.ensemble_build).
MODELS = ("ner", "postures", "intent", "tfidf", "ensemble", "joint")
# Chains of builds run one after another inside one process; chains run side by side. One build
# per chain: their CPU seconds (ner ~420, postures ~440, intent ~250) are too uneven to pair; the
# TF-IDF posture bundle (~30 CPU seconds, no torch training) and joint (nlu-food: one encoder,
# intent + entity heads, about twice intent's training: 5,376 utterances + as many
# sentences) follow the shortest.
CHAINS = (("ner",), ("postures",), ("intent", "tfidf", "joint"))
TRAIN_THREADS = 1


@dataclass(frozen=True)
class BuildRequest:
    """What ``python -m default_models`` was asked to build, and how."""

    models: tuple[str, ...]
    root: Path
    force: bool = False
    ner_epochs: int = 3
    posture_checkpoint: Path | None = None
    intent_checkpoint: Path | None = None

    def arguments(self, models: Sequence[str]) -> list[str]:
        """Command-line arguments that build ``models`` with this request's options."""
        args = [*models, "--root", str(self.root), "--sequential", "--epochs", str(self.ner_epochs)]
        if self.force:
            args.append("--force")
        if self.posture_checkpoint and "postures" in models:
            args += ["--posture-checkpoint", str(self.posture_checkpoint)]
        if self.intent_checkpoint and "intent" in models:
            args += ["--intent-checkpoint", str(self.intent_checkpoint)]
        return args


def build(request: BuildRequest, parallel: bool = True) -> None:
    """Build the requested bundles: each chain in its own process, all at once, when
    ``parallel`` and more than one is involved; else one after another in this process."""
    chains = [tuple(m for m in chain if m in request.models) for chain in CHAINS]
    chains = [chain for chain in chains if chain]
    if parallel and len(chains) > 1:
        _run_chains(request, chains)
        build_after_chains(request)
    else:
        build_here(request)


def build_here(request: BuildRequest) -> None:
    """The requested builds in this process, in the order of MODELS."""
    import torch

    from default_models.build import build_ner
    from default_models.intent_build import build_intent
    from default_models.joint_build import build_joint_default
    from default_models.posture_build import build_postures
    from default_models.tfidf_build import build_tfidf_postures

    torch.set_num_threads(TRAIN_THREADS)
    if "ner" in request.models:
        with building(request.root, "ner"):
            build_ner(request.root, force=request.force, epochs=request.ner_epochs)
    if "postures" in request.models:
        with building(request.root, "postures"):
            build_postures(request.root, force=request.force, checkpoint=request.posture_checkpoint)
    if "intent" in request.models:
        with building(request.root, "intent"):
            build_intent(request.root, force=request.force, checkpoint=request.intent_checkpoint)
    if "tfidf" in request.models:
        with building(request.root, "tfidf"):
            build_tfidf_postures(request.root, force=request.force)
    if "joint" in request.models:
        with building(request.root, "joint"):
            build_joint_default(request.root, force=request.force)
    build_after_chains(request)


def build_after_chains(request: BuildRequest) -> None:
    """Builds that combine other bundles, after those are built: the posture ensemble (only
    when both member bundles exist)."""
    if "ensemble" in request.models:
        from default_models.ensemble_build import build_posture_ensemble

        with building(request.root, "ensemble"):
            build_posture_ensemble(request.root, force=request.force)


@contextmanager
def building(root: Path, model: str) -> Iterator[None]:
    """Hold ``root/.build-<model>.lock`` while building ``model``.

    Two builds of one model into one root (``make run`` beside the test suite's fixture, two
    test sessions) used to share its work directory, and one removed the other's staged bundle
    mid-export. The second now waits, then finds the bundle cached and reuses it.
    """
    root.mkdir(parents=True, exist_ok=True)
    with (root / f".build-{model}.lock").open("a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            print(f"waiting for another build of {model} into {root} to finish", flush=True)
            fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _run_chains(request: BuildRequest, chains: Sequence[tuple[str, ...]]) -> None:
    """One ``python -m default_models`` process per chain."""
    run_side_by_side(
        {
            "+".join(chain): [sys.executable, "-m", "default_models", *request.arguments(chain)]
            for chain in chains
        }
    )


def run_side_by_side(commands: dict[str, list[str]]) -> None:
    """Run the commands at once, each output line prefixed ``[name]``; the first failure
    terminates the others and raises SystemExit naming it."""
    # Idle OpenMP threads must not spin on a core the other chain needs.
    env = {**os.environ, "OMP_WAIT_POLICY": os.environ.get("OMP_WAIT_POLICY", "PASSIVE")}
    processes: list[tuple[str, subprocess.Popen[str]]] = []
    pumps = []
    for name, command in commands.items():
        print(f"[{name}] $ {' '.join(command[1:])}", flush=True)
        process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env
        )
        processes.append((name, process))
        pump = threading.Thread(target=_prefix_lines, args=(process, name), daemon=True)
        pump.start()
        pumps.append(pump)
    try:
        failed = _wait_all(processes)
    finally:
        for _, process in processes:
            if process.poll() is None:
                process.terminate()
                process.wait()
        for pump in pumps:
            pump.join()
    if failed:
        raise SystemExit(f"default build failed: {failed}")


def _wait_all(processes: Sequence[tuple[str, subprocess.Popen[str]]]) -> str | None:
    """Wait for every process; at the first non-zero exit, name it (the caller stops the rest)."""
    pending = list(processes)
    while pending:
        for name, process in list(pending):
            try:
                code = process.wait(timeout=0.5)
            except subprocess.TimeoutExpired:
                continue
            pending.remove((name, process))
            if code != 0:
                return f"{name} exited with {code}"
    return None


def _prefix_lines(process: subprocess.Popen[str], name: str) -> None:
    assert process.stdout is not None
    for line in process.stdout:
        print(f"[{name}] {line}", end="", flush=True)
