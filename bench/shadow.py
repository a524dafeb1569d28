"""Served latency with shadow traffic off and on (``python -m bench.shadow``; issue 24).

One service on a scratch bundles directory holding ``ner-food`` twice (versions 1 and 2: the
same graph, so the shadow does the same work as the served version). Closed-loop load at
``--concurrency`` (default 8) on ``/v1/entities``; rounds alternate shadow off (all traffic to 2)
and shadow on (fraction 1.0 to version 1), in the same run, so the p95 ratio compares like with
like. The served answer never waits for the shadow copy (a bounded queue); what the shadow costs
is CPU taken from the served version's worker on the same cores.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

import httpx

from bench.host import describe, host
from bench.http_load import Server, closed_loop
from loadtest.server import DEFAULT_BUNDLES, running_service

ADMIN_KEY = "bench-shadow-admin-key"
TEXTS = [
    "tushar se 2 misal mangwao",
    "order 2 masala dosa from saravana bhavan and one filter coffee",
    "get me paneer butter masala with 4 butter naan from punjabi dhaba",
]


def scratch_versions(bundles: Path, root: Path) -> None:
    for version in ("1", "2"):
        target = root / "ner-food" / version
        shutil.copytree(bundles / "ner-food", target)
        manifest = json.loads((target / "bundle.json").read_text())
        manifest["version"] = version
        (target / "bundle.json").write_text(json.dumps(manifest, indent=2))


def set_shadow(base: str, on: bool) -> None:
    policy: dict[str, Any] = {"shadow": {"version": "1", "fraction": 1.0}} if on else {}
    response = httpx.put(
        f"{base}/v1/admin/models/ner-food/routing",
        json=policy,
        headers={"X-API-Key": ADMIN_KEY},
        timeout=30,
    )
    response.raise_for_status()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--bundles", type=Path, default=DEFAULT_BUNDLES)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--requests", type=int, default=2000, help="per round")
    parser.add_argument("--rounds", type=int, default=3, help="pairs of off/on rounds")
    parser.add_argument("--out", type=Path, default=None, help="JSON report")
    args = parser.parse_args(argv)
    info = host()
    print(describe(info), flush=True)
    bodies = [{"text": t, "model": "ner-food"} for t in TEXTS]
    rounds: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        scratch_versions(args.bundles, root)
        env = {"INFER_ADMIN_KEYS": json.dumps([ADMIN_KEY]), "INFER_SHED_LATE_REQUESTS": "false"}
        with running_service(root, root / "service.log", env, ready_timeout=300) as service:
            server = Server(service.base, service.pid)
            closed_loop(server, "/v1/entities", bodies, args.concurrency, 50, warmup=10)
            for _ in range(args.rounds):
                for on in (False, True):
                    set_shadow(server.base, on)
                    result = closed_loop(
                        server, "/v1/entities", bodies, args.concurrency, args.requests
                    )
                    metrics = httpx.get(f"{server.base}/metrics", timeout=30).text
                    row = {"shadow": on, **result.as_dict()}
                    row["shadow_dropped_total"] = sum(
                        float(line.rsplit(" ", 1)[1])
                        for line in metrics.splitlines()
                        if line.startswith("infer_shadow_dropped_total{")
                    )
                    rounds.append(row)
                    print(
                        f"shadow {'on ' if on else 'off'}: p50 {row['p50_ms']:.1f} ms, "
                        f"p95 {row['p95_ms']:.1f} ms, {row['per_s']:.0f} req/s, "
                        f"errors {row['errors']}",
                        flush=True,
                    )
    off = sorted(r["p95_ms"] for r in rounds if not r["shadow"])
    on_ = sorted(r["p95_ms"] for r in rounds if r["shadow"])
    ratio = on_[len(on_) // 2] / off[len(off) // 2]
    print(f"served p95 shadow on / off (medians of {args.rounds} rounds): {ratio:.3f}")
    if args.out is not None:
        report = {"host": info, "concurrency": args.concurrency, "rounds": rounds, "ratio": ratio}
        args.out.write_text(json.dumps(report, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
