"""Start the service on 127.0.0.1, run the locust load test headless against it, gate on the SLO.

``python -m loadtest.run [--bundles DIR] [--users N] [--spawn-rate R] [--run-time 40s]``

Needs an NER and a posture bundle in ``--bundles`` (default: the built-in ones in
``.cache/bundles``). Writes locust's CSV stats (``loadtest_stats.csv``, ...), the gate's summary
(``loadtest_summary.json``: p50/p95/p99 and throughput per route), the service's own /metrics and
its log under ``--out`` (default ``reports/``, git-ignored). Exits with locust's status (non-zero
when a request failed or a p95 is above its SLO), or 1 when the service stopped answering
/healthz or did not exit 0 on SIGTERM after the run.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import httpx

from loadtest.server import DEFAULT_BUNDLES, ROOT, running_service

LOCUSTFILE = Path(__file__).resolve().with_name("locustfile.py")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--bundles", type=Path, default=DEFAULT_BUNDLES)
    parser.add_argument("--users", type=int, default=4, help="concurrent simulated clients")
    parser.add_argument("--spawn-rate", type=float, default=2.0, help="users started per second")
    parser.add_argument("--run-time", default="40s", help="locust --run-time, e.g. 40s, 5m")
    parser.add_argument("--out", type=Path, default=ROOT / "reports")
    parser.add_argument("--slo-entities-p95-ms", type=float, help="override the README's SLO")
    parser.add_argument("--slo-parse-p95-ms", type=float, help="override the README's SLO")
    parser.add_argument("--slo-postures-p95-ms", type=float, help="override the README's SLO")
    return parser.parse_args()


def locust_command(args: argparse.Namespace, base: str) -> list[str]:
    command = [
        *(sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), "--headless", "--host", base),
        *("--users", str(args.users), "--spawn-rate", str(args.spawn_rate)),
        *("--run-time", args.run_time, "--csv", str(args.out / "loadtest"), "--only-summary"),
        # Requests in flight when the time is up finish (and count) instead of being cut off.
        *("--stop-timeout", "60"),
        *("--summary-json", str(args.out / "loadtest_summary.json")),
    ]
    for flag in ("slo_entities_p95_ms", "slo_parse_p95_ms", "slo_postures_p95_ms"):
        if getattr(args, flag) is not None:
            command += ["--" + flag.replace("_", "-"), str(getattr(args, flag))]
    return command


def main() -> int:
    args = parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    with running_service(args.bundles, args.out / "service.log") as service:
        missing = {"ner", "postures"} - set(service.models.values())
        if missing:
            print(f"no {sorted(missing)} bundle in {args.bundles} (loaded: {service.models})")
            return 2
        print(f"service on {service.base}: {service.models}; {args.users} users, {args.run_time}")
        status = subprocess.run(locust_command(args, service.base), cwd=ROOT).returncode
        alive = service.healthy()
        if alive:
            metrics = httpx.get(f"{service.base}/metrics", timeout=10).text
            (args.out / "service_metrics.txt").write_text(metrics)
    code = service.process.returncode
    print(f"service answered /healthz after the run: {alive}; exit status on SIGTERM: {code}")
    summary = args.out / "loadtest_summary.json"
    if summary.exists():
        figures = json.loads(summary.read_text())
        print(json.dumps({"routes": figures["routes"], "rps": figures["rps"]}, indent=1))
    return status if alive and code == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
