"""The Grafana dashboard, as code: every panel's PromQL in one list, shared by the JSON export
(k8s/components/monitoring/dashboard.json), the live proof and the README's picture.

Queries use ``$__rate_interval`` and the ``$namespace`` variable (All = any, no namespace label
included); :func:`concrete` substitutes them for the proof, which runs them outside Grafana.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from monitoring.rules import LATENCY_SLO_LE, MODEL_ROUTES

NS = 'namespace=~"$namespace"'
RATE = "$__rate_interval"
ROUTES = f'route=~"{MODEL_ROUTES}",{NS}'


@dataclass(frozen=True)
class Target:
    expr: str
    legend: str


@dataclass(frozen=True)
class Panel:
    title: str
    unit: str
    targets: tuple[Target, ...]
    description: str = ""


def _or_zero(expr: str, by: str, base: str) -> str:
    """``expr``, with a 0 series for every ``by`` group that has traffic but no match."""
    return f"{expr} or sum by ({by}) (rate({base}[{RATE}])) * 0"


def _quantile(q: str, metric: str, by: str, selector: str = NS) -> str:
    return (
        f"histogram_quantile({q}, sum by ({by}, le) (rate({metric}_bucket{{{selector}}}[{RATE}])))"
    )


REQUESTS = "infer_request_duration_seconds_count"
COUNT = f"{REQUESTS}{{{ROUTES}}}"
# Model versions (docs/deployment/model-versions.md): every series below is labelled model, version.
MV = "model, version"
MODEL_REQUESTS = f"infer_model_requests_total{{{NS}}}"
COMPARISONS = f"infer_shadow_comparisons_total{{{NS}}}"


def _per_version_rate(metric: str, selector: str = "") -> str:
    inner = f"{NS},{selector}" if selector else NS
    return f"sum by ({MV}) (rate({metric}{{{inner}}}[{RATE}]))"


VERSION_ERRORS = _or_zero(
    _per_version_rate("infer_model_requests_total", 'outcome="error"'), MV, MODEL_REQUESTS
)
# 0, not absent, for a shadow version that never agreed.
VERSION_AGREEMENT = (
    "("
    + _or_zero(
        _per_version_rate("infer_shadow_comparisons_total", 'outcome="agree"'), MV, COMPARISONS
    )
    + ") / "
    + _per_version_rate("infer_shadow_comparisons_total")
)


SERVICE_PANELS: tuple[Panel, ...] = (
    Panel(
        "Requests per second by route and status",
        "reqps",
        (
            Target(
                f"sum by (route, status) (rate({REQUESTS}{{{NS}}}[{RATE}]))",
                "{{route}} {{status}}",
            ),
        ),
    ),
    Panel(
        "Latency p50 / p95 / p99 by route",
        "s",
        tuple(
            Target(
                _quantile(f"0.{q}", "infer_request_duration_seconds", "route", ROUTES),
                f"p{q} {{{{route}}}}",
            )
            for q in ("50", "95", "99")
        ),
        "SLO thresholds: " + ", ".join(f"{r} {le} s" for r, le in LATENCY_SLO_LE.items()),
    ),
    Panel(
        "429 / 504 / 5xx per second by route",
        "reqps",
        tuple(
            Target(
                _or_zero(
                    f'sum by (route) (rate({REQUESTS}{{{ROUTES},status=~"{s}"}}[{RATE}]))',
                    "route",
                    COUNT,
                ),
                f"{label} {{{{route}}}}",
            )
            for s, label in (("429", "429"), ("504", "504"), ("5..", "5xx"))
        ),
    ),
    Panel(
        "Availability SLO: error ratio (budget 0.1 %)",
        "percentunit",
        tuple(
            Target(
                f"max by (route) (route:infer_request_errors:ratio_rate{w}{{{NS}}})",
                f"{w} {{{{route}}}}",
            )
            for w in ("5m", "1h")
        ),
        "Share of model-route requests answered 5xx (recording rules).",
    ),
    Panel(
        "Latency SLO: slow ratio (budget 5 %)",
        "percentunit",
        tuple(
            Target(
                f"max by (route) (route:infer_request_slow:ratio_rate{w}{{{NS}}})",
                f"{w} {{{{route}}}}",
            )
            for w in ("5m", "1h")
        ),
        "Share of successful requests slower than the route's threshold (recording rules).",
    ),
    Panel(
        "Ready replicas and requests in flight",
        "short",
        (
            Target(f"sum(infer_ready{{{NS}}})", "ready replicas"),
            Target(f"sum(infer_requests_in_flight{{{NS}}})", "in flight"),
        ),
    ),
    Panel(
        "Stage latency p95 by model",
        "s",
        (
            Target(
                _quantile("0.95", "infer_stage_duration_seconds", "model, stage"),
                "{{model}} {{stage}}",
            ),
        ),
        "queue wait, tokenize, inference (ONNX Runtime), decode (CRF / thresholds).",
    ),
    Panel(
        "Batch size p95 (requests, texts per batch; windows per ONNX call)",
        "short",
        (Target(_quantile("0.95", "infer_batch_size", "model, unit"), "{{model}} {{unit}}"),),
    ),
    Panel(
        "Tokens: p95 padded per ONNX call, per second, and padded share of computed tokens",
        "short",
        (
            Target(_quantile("0.95", "infer_batch_tokens", "model"), "{{model}} p95 per call"),
            Target(
                f"sum by (model) (rate(infer_tokens_total{{{NS}}}[{RATE}]))",
                "{{model}} tokens/s",
            ),
            Target(
                f'sum by (model) (rate(infer_call_tokens_total{{{NS},kind="padding"}}[{RATE}]))'
                f" / sum by (model) (rate(infer_call_tokens_total{{{NS}}}[{RATE}]))",
                "{{model}} padded share",
            ),
        ),
    ),
    Panel(
        "Queue depth and capacity by model",
        "short",
        (
            Target(f"max by (model) (infer_queue_depth{{{NS}}})", "{{model}} queued"),
            Target(f"max by (model) (infer_queue_capacity{{{NS}}})", "{{model}} capacity"),
        ),
    ),
    Panel(
        "Admission by work: queued tokens and requests shed by model",
        "short",
        (
            Target(f"max by (model) (infer_queued_tokens{{{NS}}})", "{{model}} queued tokens"),
            Target(
                _or_zero(
                    f"sum by (model, reason) (rate(infer_shed_total{{{NS}}}[{RATE}]))",
                    "model",
                    f"infer_texts_total{{{NS}}}",
                ),
                "{{model}} shed/s {{reason}}",
            ),
        ),
        "Requests refused at admission (429 with Retry-After) because the queued work could not "
        "meet their deadline or the token budget was full (docs/reliability.md).",
    ),
    Panel(
        "Windows per document and texts per second by model",
        "short",
        (
            Target(
                f"sum by (model) (rate(infer_windows_total{{{NS}}}[{RATE}]))"
                f" / sum by (model) (rate(infer_texts_total{{{NS}}}[{RATE}]))",
                "{{model}} windows per text",
            ),
            Target(
                f"sum by (model) (rate(infer_texts_total{{{NS}}}[{RATE}]))", "{{model}} texts/s"
            ),
        ),
    ),
    Panel(
        "Failures per second by model and error type",
        "reqps",
        (
            Target(
                _or_zero(
                    f"sum by (model, error) (rate(infer_failures_total{{{NS}}}[{RATE}]))",
                    "model",
                    f"infer_texts_total{{{NS}}}",
                ),
                "{{model}} {{error}}",
            ),
        ),
        "Every refused or failed request, by the error type of its JSON body.",
    ),
    Panel(
        "Cancelled work per second by model (requests, windows, ONNX calls)",
        "short",
        (
            Target(
                f"sum by (model, unit) (rate(infer_cancelled_total{{{NS}}}[{RATE}]))",
                "{{model}} {{unit}}",
            ),
        ),
        "Work dropped because nobody waits for it any more: deadline passed, client gone, "
        "shutdown (a terminated ONNX Runtime call frees the model within about one slice).",
    ),
    Panel(
        "Review rate by model: live (1h) vs validation",
        "percentunit",
        (
            Target(
                f'sum by (model) (rate(infer_review_documents_total{{{NS},decision="review"}}[1h]))'
                f" / sum by (model) (rate(infer_review_documents_total{{{NS}}}[1h]))",
                "{{model}} live",
            ),
            Target(
                f"max by (model) (infer_review_validation_rate{{{NS}}})", "{{model}} validation"
            ),
        ),
        "Share of documents sent to a person (models with per-class automation, docs/review.md); "
        "InferReviewRateDrift fires when live and validation differ by more than 0.15 for 30 m.",
    ),
    Panel(
        "Labels sent to review per second by model, class and reason (top 10)",
        "short",
        (
            Target(
                "topk(10, sum by (model, label, reason)"
                f" (rate(infer_review_reasons_total{{{NS}}}[{RATE}])))",
                "{{model}} {{label}} {{reason}}",
            ),
        ),
        "class_not_automated: a label of a class below the automation target; near_threshold: a "
        "probability inside the class's review band (docs/review.md).",
    ),
    Panel(
        "Redacted spans and truncated texts per second",
        "short",
        (
            Target(
                _or_zero(
                    f"sum by (model, label) (rate(infer_redacted_spans_total{{{NS}}}[{RATE}]))",
                    "model",
                    f"infer_texts_total{{{NS}}}",
                ),
                "{{model}} redacted {{label}}",
            ),
            Target(
                f"sum by (model) (rate(infer_truncated_texts_total{{{NS}}}[{RATE}]))",
                "{{model}} truncated",
            ),
        ),
        "Spans /v1/redact replaced, by entity label; texts read only up to their first window "
        "because the request asked truncation 'truncate' (their end was not tagged or redacted).",
    ),
)

VERSION_PANELS: tuple[Panel, ...] = (
    Panel(
        "Traffic share by model version (routing weights)",
        "percentunit",
        (
            Target(
                f"max by ({MV}) (infer_model_traffic_share{{{NS}}})",
                "{{model}} v{{version}}",
            ),
        ),
        "The share of a model's requests each version is routed (INFER_ROUTING or PUT "
        "/v1/admin/models/{name}/routing); a shadow version gets 0 here and its fraction below.",
    ),
    Panel(
        "Requests per second by model version",
        "reqps",
        (
            Target(
                f"sum by ({MV}, outcome) (rate({MODEL_REQUESTS}[{RATE}]))",
                "{{model}} v{{version}} {{outcome}}",
            ),
        ),
        "Requests answered by each version (pinned ner-food@2 included), ok or error.",
    ),
    Panel(
        "Error ratio by model version",
        "percentunit",
        (
            Target(
                f"({VERSION_ERRORS}) / {_per_version_rate('infer_model_requests_total')}",
                "{{model}} v{{version}}",
            ),
        ),
        "InferCanaryErrorRate fires when a canary's 10 m ratio is above both 2x and 1 point over "
        "the stable version's (at least 100 canary requests).",
    ),
    Panel(
        "Model time p95 by model version",
        "s",
        (
            Target(
                _quantile("0.95", "infer_inference_duration_seconds", MV),
                "{{model}} v{{version}} p95",
            ),
        ),
        "Tokenize + ONNX Runtime + decode per request; InferCanaryLatency fires when a canary's "
        "10 m p95 is above 1.25x the stable version's.",
    ),
    Panel(
        "Shadow agreement by shadow version",
        "percentunit",
        (
            Target(
                VERSION_AGREEMENT,
                "{{model}} v{{version}} agreement",
            ),
        ),
        "Share of compared requests where the shadow version gave the same entities / decisions "
        "as the served one; InferShadowDisagreement fires below 0.95 over 30 m.",
    ),
    Panel(
        "Shadow work per second: compared, dropped, failed",
        "reqps",
        (
            Target(
                _per_version_rate("infer_shadow_comparisons_total"),
                "{{model}} v{{version}} compared",
            ),
            Target(
                _or_zero(_per_version_rate("infer_shadow_dropped_total"), MV, COMPARISONS),
                "{{model}} v{{version}} dropped",
            ),
            Target(
                _or_zero(_per_version_rate("infer_shadow_errors_total"), MV, COMPARISONS),
                "{{model}} v{{version}} failed",
            ),
        ),
        "Dropped: the shadow queue (INFER_SHADOW_QUEUE) was full, the served answer was not "
        "delayed; InferShadowDropping fires above 10 % over 15 m.",
    ),
    Panel(
        "Version states and roles",
        "short",
        (
            Target(
                f"max by ({MV}, state) (infer_model_version_state{{{NS}}}) > 0",
                "{{model}} v{{version}} {{state}}",
            ),
            Target(
                f"max by ({MV}, role) (infer_model_version_info{{{NS}}})",
                "{{model}} v{{version}} {{role}}",
            ),
        ),
        "loading, self_checking, warming, ready, draining, failed (1 = the version's state on "
        "some replica); role: stable, canary, shadow, idle.",
    ),
    Panel(
        "Version load failures by reason (since each replica started)",
        "short",
        (
            Target(
                f"sum by ({MV}, reason) (infer_model_load_failures_total{{{NS}}})",
                "{{model}} v{{version}} {{reason}}",
            ),
        ),
        "Refused versions (manifest, sha256, selfcheck, memory, error): they never get traffic; "
        "GET /v1/models names the reason. The counter itself, not increase(): the service "
        "creates it at the first failure, which increase() would not count. InferModelLoadFailed "
        "fires for 15 m after a failure.",
    ),
    Panel(
        "Resident memory by model version (largest replica)",
        "bytes",
        (
            Target(
                f"max by ({MV}) (infer_model_memory_bytes{{{NS}}})",
                "{{model}} v{{version}}",
            ),
        ),
        "What loading the version added to the process (INFER_MAX_MODEL_MEMORY_MB refuses a "
        "load that would exceed it); it returns when the version is unloaded.",
    ),
)


PANELS = SERVICE_PANELS + VERSION_PANELS


def concrete(expr: str, rate: str = "1m") -> str:
    """The query as Grafana would send it with namespace = All."""
    return expr.replace("$__rate_interval", rate).replace("$namespace", ".*")


def dashboard() -> dict[str, Any]:
    """An importable Grafana dashboard (schema 39) with a Prometheus data-source variable."""
    source = {"type": "prometheus", "uid": "${datasource}"}
    panels = []
    for i, panel in enumerate(PANELS):
        panels.append(
            {
                "id": i + 1,
                "type": "timeseries",
                "title": panel.title,
                "description": panel.description,
                "datasource": source,
                "gridPos": {"h": 8, "w": 8, "x": (i % 3) * 8, "y": (i // 3) * 8},
                "fieldConfig": {"defaults": {"unit": panel.unit}, "overrides": []},
                "options": {"legend": {"displayMode": "list", "placement": "bottom"}},
                "targets": [
                    {
                        "refId": chr(ord("A") + j),
                        "datasource": source,
                        "expr": t.expr,
                        "legendFormat": t.legend,
                    }
                    for j, t in enumerate(panel.targets)
                ],
            }
        )
    return {
        "uid": "nlp-inference",
        "title": "NLP inference service",
        "tags": ["nlp-inference", "generated"],
        "timezone": "utc",
        "schemaVersion": 39,
        "version": 1,
        "refresh": "30s",
        "time": {"from": "now-3h", "to": "now"},
        "editable": True,
        "templating": {
            "list": [
                {
                    "name": "datasource",
                    "label": "Prometheus",
                    "type": "datasource",
                    "query": "prometheus",
                },
                {
                    "name": "namespace",
                    "type": "query",
                    "datasource": source,
                    "query": "label_values(infer_ready, namespace)",
                    "includeAll": True,
                    "allValue": ".*",
                    "multi": True,
                    "current": {"text": "All", "value": "$__all"},
                    "refresh": 2,
                },
            ]
        },
        "panels": panels,
    }
