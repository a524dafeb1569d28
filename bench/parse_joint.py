"""``/v1/parse``: one joint bundle (``nlu-food``, one encoder pass) vs the intent + NER pair
(``intent-food`` + ``ner-food``, two encoders), same server, same utterances, same run.

python -m bench.parse_joint [--bundles DIR] [--requests N] [--json FILE]

``--bundles`` is a bundles directory holding the three (``python -m default_models intent ner
joint --root ROOT`` builds them into ``ROOT/bundles``); a missing one stops the run before the
server starts. Starts ``python -m service`` on 127.0.0.1 with the three bundles, then closed-loop
loads of single-utterance parses at concurrency 1 and 32, alternating the two paths (pair, joint,
pair, joint) so that a change in the machine's load hits both. Prints a ready-to-paste Markdown
block: a caption (CPU model and ISA flags, CPUs, load average before and after, each bundle's
variant, requests per load) and the table. The load generator shares the CPUs with the server.
Parses per CPU-second (server plus load generator) is the figure least moved by other jobs on a
shared machine.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from pathlib import Path
from typing import Any

from bench.http_load import closed_loop, running_service
from default_models.build import DEFAULT_ROOT
from service.runtime.cpu_features import current_cpu

PAIR, JOINT = ("intent-food", "ner-food"), "nlu-food"


def utterances(n: int = 64) -> list[str]:
    from default_models import food_corpus, intent_corpus

    said = [u.text for u in intent_corpus.generate_splits()["test"][: n // 2]]
    return said + [e.text for e in food_corpus.generate_splits(n_test=n // 2)["test"][: n // 2]]


def run(bundles: Path, requests: int) -> list[dict[str, Any]]:
    texts = utterances()
    paths = {
        "intent + NER pair": [{"text": t} for t in texts],
        "joint (nlu-food)": [{"text": t, "model": JOINT} for t in texts],
    }
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp) / "service.log"
        with running_service(bundles, [*PAIR, JOINT], log) as server:
            for concurrency in (1, 32):
                for _round in range(2):
                    for name, bodies in paths.items():
                        got = closed_loop(server, "/v1/parse", bodies, concurrency, requests, 16)
                        if got.errors:
                            raise RuntimeError(f"{got.errors} failed requests ({name})")
                        rows.append({"path": name, "c": concurrency, **got.summary.as_dict()})
    return rows


def variants(bundles: Path) -> dict[str, str]:
    """Each bundle's shipped variant (fp32, int8-static, ...) as its manifest records it;
    SystemExit naming a missing bundle."""
    from service.bundle import BundleError, read_manifest

    out = {}
    for name in (*PAIR, JOINT):
        try:
            manifest = read_manifest(bundles / name)
        except BundleError as exc:
            raise SystemExit(
                f"{bundles / name}: {exc}; build the three with python -m default_models intent "
                f"ner joint --root ROOT and pass --bundles ROOT/bundles"
            ) from exc
        quantization = manifest.quantization()
        out[name] = "fp32" if quantization == "none" else quantization
    return out


def caption(cpu: str, shipped: dict[str, str], load: tuple[str, str], requests: int) -> str:
    cpus = len(os.sched_getaffinity(0))
    bundles = ", ".join(f"`{name}` {variant}" for name, variant in shipped.items())
    return (
        f"`/v1/parse`, one server holding {bundles}; single-utterance requests (64 texts from "
        f"both test splits, cycled), {requests} requests per load, the two paths alternated "
        f"twice; {cpu}, {cpus} CPUs, load average {load[0]} before and {load[1]} after the run:"
    )


def _load_average() -> str:
    return "/".join(f"{x:.1f}" for x in os.getloadavg())


def table(rows: list[dict[str, Any]]) -> str:
    lines = ["| path | concurrency | p50 ms | p95 ms | requests/s | parses per CPU-second |"]
    lines.append("|---|---|---|---|---|---|")
    for r in rows:
        cells = [r["path"], r["c"], f"{r['p50_ms']:.1f}", f"{r['p95_ms']:.1f}"]
        cells += [f"{r['per_s']:.0f}", f"{r['per_cpu_s']:.0f}"]
        lines.append("| " + " | ".join(str(c) for c in cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.parse_joint", description=__doc__)
    parser.add_argument("--bundles", type=Path, default=DEFAULT_ROOT / "bundles")
    parser.add_argument("--requests", type=int, default=400, help="per load (default: 400)")
    parser.add_argument("--json", type=Path, help="also write the rows here")
    args = parser.parse_args(argv)
    shipped = variants(args.bundles)
    cpu = current_cpu()
    print(f"CPU: {cpu.describe()}", flush=True)
    before = _load_average()
    rows = run(args.bundles, args.requests)
    print()
    print(caption(cpu.describe(), shipped, (before, _load_average()), args.requests))
    print()
    print(table(rows))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
