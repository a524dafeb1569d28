"""Locust load test: chat utterances (entities, and intent + entities through ``/v1/parse``) and
long posture documents against one service.

Run it through ``loadtest/run.py`` (or ``make loadtest``), which starts the service on 127.0.0.1,
runs this headless for a bounded time and keeps the CSV stats. The SLO gate is the
``events.quitting`` listener below: the process exits non-zero when any request failed or a
route's p95 latency is above its SLO (stated in the README, "Load test and SLO").
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

from locust import HttpUser, between, events, task
from locust.env import Environment

from default_models import food_corpus, legal_corpus

# The SLOs (p95, milliseconds) also stated in the README; CLI flags override them.
SLO_P95_MS = {"/v1/entities": 250.0, "/v1/parse": 300.0, "/v1/postures": 1000.0}

# Held-out splits: text the models were not trained on, generated from fixed seeds.
UTTERANCES = [e.text for e in food_corpus.generate_splits(n_train=1, n_dev=1, n_test=600)["test"]]
DOCUMENTS = [
    d.text for d in legal_corpus.generate_splits(n_train=1, n_validation=1, n_test=40)["test"]
]


@events.init_command_line_parser.add_listener  # type: ignore[untyped-decorator]
def _options(parser: Any) -> None:
    parser.add_argument("--slo-entities-p95-ms", type=float, default=SLO_P95_MS["/v1/entities"])
    parser.add_argument("--slo-parse-p95-ms", type=float, default=SLO_P95_MS["/v1/parse"])
    parser.add_argument("--slo-postures-p95-ms", type=float, default=SLO_P95_MS["/v1/postures"])
    parser.add_argument("--summary-json", default="", help="write the gate's figures here")


def _check(response: Any, texts: int) -> None:
    """A 200 is a success only with one result per text sent; anything else is a failure."""
    if response.status_code != 200:
        response.failure(f"HTTP {response.status_code}: {response.text[:200]}")
        return
    results = response.json().get("results")
    if not isinstance(results, list) or len(results) != texts:
        response.failure(f"expected {texts} results, got {results!r:.200}")


class EntitiesUser(HttpUser):
    """A chat backend: one utterance at a time, sometimes a small batch, little think time."""

    weight = 3
    wait_time = between(0.05, 0.25)

    @task(4)
    def one(self) -> None:
        body = {"text": random.choice(UTTERANCES)}
        with self.client.post("/v1/entities", json=body, catch_response=True) as response:
            _check(response, 1)

    @task(1)
    def batch(self) -> None:
        body = {"texts": random.sample(UTTERANCES, 4)}
        with self.client.post("/v1/entities", json=body, catch_response=True) as response:
            _check(response, 4)


class ParseUser(HttpUser):
    """A chat backend that wants the intent too: one utterance per request, intent + entities."""

    weight = 2
    wait_time = between(0.05, 0.25)

    @task
    def one(self) -> None:
        body = {"text": random.choice(UTTERANCES)}
        with self.client.post("/v1/parse", json=body, catch_response=True) as response:
            _check(response, 1)


class PosturesUser(HttpUser):
    """A legal pipeline: one court opinion per request (300-3,000 tokens), a pause between."""

    weight = 1
    wait_time = between(0.5, 1.5)

    @task
    def document(self) -> None:
        body = {"text": random.choice(DOCUMENTS), "top_k": 5}
        with self.client.post("/v1/postures", json=body, catch_response=True) as response:
            _check(response, 1)


def summary(environment: Environment) -> dict[str, Any]:
    """Per-route and total figures: requests, failures, p50/p95/p99 (ms), throughput (req/s)."""
    routes = {}
    for name, entry in [(n, environment.stats.get(n, "POST")) for n in SLO_P95_MS]:
        routes[name] = {
            "requests": entry.num_requests,
            "failures": entry.num_failures,
            "p50_ms": entry.get_response_time_percentile(0.5),
            "p95_ms": entry.get_response_time_percentile(0.95),
            "p99_ms": entry.get_response_time_percentile(0.99),
            "rps": entry.total_rps,
        }
    total = environment.stats.total
    return {
        "routes": routes,
        "total": {"requests": total.num_requests, "failures": total.num_failures},
        "fail_ratio": total.fail_ratio,
        "rps": total.total_rps,
    }


@events.quitting.add_listener  # type: ignore[untyped-decorator]
def _slo_gate(environment: Environment, **_: Any) -> None:
    options = environment.parsed_options
    slo = {
        "/v1/entities": getattr(options, "slo_entities_p95_ms", SLO_P95_MS["/v1/entities"]),
        "/v1/parse": getattr(options, "slo_parse_p95_ms", SLO_P95_MS["/v1/parse"]),
        "/v1/postures": getattr(options, "slo_postures_p95_ms", SLO_P95_MS["/v1/postures"]),
    }
    figures = summary(environment)
    problems = []
    if figures["fail_ratio"] > 0:
        problems.append(f"failure ratio {figures['fail_ratio']:.4f} > 0")
    for name, limit in slo.items():
        route = figures["routes"][name]
        if route["requests"] == 0:
            problems.append(f"{name}: no requests completed")
        elif route["p95_ms"] > limit:
            problems.append(f"{name}: p95 {route['p95_ms']:.0f} ms > SLO {limit:.0f} ms")
    figures["slo_p95_ms"], figures["problems"] = slo, problems
    target: str | None = getattr(options, "summary_json", None)
    if target:
        Path(target).write_text(json.dumps(figures, indent=2) + "\n")
    for name, route in figures["routes"].items():
        print(
            f"SLO {name}: {route['requests']} requests, {route['failures']} failed, "
            f"p50 {route['p50_ms']:.0f} / p95 {route['p95_ms']:.0f} / p99 {route['p99_ms']:.0f}"
            f" ms (SLO p95 {slo[name]:.0f} ms), {route['rps']:.2f} req/s"
        )
    print("SLO gate:", "FAILED: " + "; ".join(problems) if problems else "passed")
    environment.process_exit_code = 1 if problems else 0
