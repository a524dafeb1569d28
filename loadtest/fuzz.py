"""Fuzz the service's own OpenAPI schema with schemathesis against a local process.

``python -m loadtest.fuzz [--bundles DIR] [--max-examples N]``

Every generated request must get a documented status with a body matching its documented schema
and never a 5xx; afterwards the service must still answer /healthz and exit 0 on SIGTERM. The
text limits are lowered for the run so that generated documents stay cheap to classify (and the
422 limit paths get exercised). Reports go to ``--out`` (default ``reports/fuzz``).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

from loadtest.server import DEFAULT_BUNDLES, ROOT, running_service

CHECKS = ",".join(
    (
        "not_a_server_error",
        "status_code_conformance",
        "content_type_conformance",
        "response_headers_conformance",
        "response_schema_conformance",
        "negative_data_rejection",
        "unsupported_method",
    )
)
# The default set; --all-checks (what `make fuzz` and .ci/run use) adds positive_data_acceptance
# and the rest: once the models are loaded the served document states the deployment's rules
# (model names, entity types, blank texts, limits; service/api/openapi.py), so a body it allows
# must be answered.
LIMITS = {
    "INFER_MAX_TEXT_CHARS": "2000",
    "INFER_MAX_DOCUMENT_CHARS": "4000",
    "INFER_MAX_TEXTS": "8",
}


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--bundles", type=Path, default=DEFAULT_BUNDLES)
    parser.add_argument("--max-examples", type=int, default=60, help="per API operation")
    parser.add_argument("--max-time", type=int, default=60, help="seconds for the whole run")
    parser.add_argument("--seed", type=int, default=None, help="default: unseeded (a new run)")
    parser.add_argument(
        "--all-checks",
        action="store_true",
        help="every schemathesis check (positive_data_acceptance too)",
    )
    parser.add_argument("--out", type=Path, default=ROOT / "reports" / "fuzz")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    with running_service(args.bundles, args.out / "service.log", LIMITS) as service:
        command = [
            *(str(Path(sys.executable).with_name("st")), "run", f"{service.base}/openapi.json"),
            *("--checks", "all" if args.all_checks else CHECKS),
            *("--phases", "examples,coverage,fuzzing"),
            *("--max-examples", str(args.max_examples), "--max-time", str(args.max_time)),
            *(("--seed", str(args.seed)) if args.seed is not None else ()),
            *("--workers", "1", "--request-timeout", "30"),
            *("--report", "junit", "--report-dir", str(args.out)),
        ]
        status = subprocess.run(command, cwd=ROOT).returncode
        alive = service.healthy()
    code = service.process.returncode
    print(f"service answered /healthz after fuzzing: {alive}; exit status on SIGTERM: {code}")
    return status if alive and code == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
