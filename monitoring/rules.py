"""The one source of the service's Prometheus rules: SLO recording rules and alerts.

``python -m monitoring generate`` writes them as a plain rules file and as a PrometheusRule
(k8s/components/monitoring/), so the two cannot drift; ``promtool test rules`` unit-tests them
(monitoring/rules_test.yaml) and ``python -m monitoring.proof`` evaluates every expression against
a real Prometheus scraping the real service.

SLOs (per model route, over 30 days):
- availability: 99.9 % of requests answered without a 5xx (429 is load shedding with
  Retry-After, watched by its own alert);
- latency: 95 % of successful requests faster than the route's threshold (``/v1/entities``
  0.256 s, ``/v1/postures`` 1 s: the load test's p95 gate, on histogram bucket bounds).
Burn-rate alerts are multi-window, multi-burn-rate (Google SRE workbook, ch. 5): page when the
budget burns 14.4x over 1 h (and 5 m) or 6x over 6 h (and 30 m); ticket at 3x over 1 d (and 2 h)
or 1x over 3 d (and 6 h).

Review-rate drift (docs/review.md): for a model with per-class automation, the share of documents
sent to a person over 1 h is compared with the share its calibration measured on the validation
split (``infer_review_validation_rate``); a gap above ``REVIEW_DRIFT_MARGIN`` (absolute) for 30 m,
with at least ``REVIEW_DRIFT_MIN_DOCUMENTS`` documents in that hour, means the traffic no longer
looks like the validation data (or the model changed): a warning.

Model versions (docs/deployment/model-versions.md): the service names each loaded version's role in
``infer_model_version_info{model,version,role}`` (stable, canary, shadow, idle), so a rule finds
"the canary" and "the stable version" of a model by joining on it (``* on (...) group_left``), never
by a version number written into the rules; with the Kubernetes-native canary (a second Deployment,
k8s/overlays/canary) every version of a job named ``*-canary`` is a canary. Stable and canary are
compared per (namespace, model). Per-version outcomes come from
``infer_model_requests_total{model,version,outcome}``, latency from
``infer_inference_duration_seconds{model,version}``, shadow comparisons from
``infer_shadow_comparisons_total{model,version,outcome}`` (version = the shadow version).

- **Canary errors**: a canary's error ratio over 10 m above both 2x the stable version's and the
  stable version's + 1 percentage point (that is, above ``max(2 s, s + 0.01)``), with at least
  ``CANARY_MIN_REQUESTS`` canary requests in those 10 m, for 5 m: warning (roll the canary back).
- **Canary latency**: a canary's p95 model time over 10 m above 1.25x the stable version's, with the
  same minimum, for 10 m: warning.
- **Shadow agreement**: a shadow version agreeing with the served answer on less than 95 % of the
  compared requests over 30 m, with at least ``SHADOW_MIN_COMPARISONS`` comparisons, for 10 m.
- **Shadow drops**: more than 10 % of the shadow work of a version dropped (queue
  ``INFER_SHADOW_QUEUE`` full) over 15 m, for 15 m: the agreement is measured on a biased sample.
- **Version load failed**: a version refused at load (manifest, sha256, self-check, memory, error)
  in the last 15 m; the serving version keeps serving, so a warning, not a page.
"""

from __future__ import annotations

from dataclasses import dataclass, field

REQUESTS = "infer_request_duration_seconds"
# Per-route latency threshold of the latency SLO; each must be a histogram bucket bound (its `le`
# label as prometheus_client writes it).
LATENCY_SLO_LE = {"/v1/entities": "0.256", "/v1/postures": "1.0"}
MODEL_ROUTES = "|".join(LATENCY_SLO_LE)
AVAILABILITY_TARGET = 0.999
LATENCY_TARGET = 0.95
BY = "namespace, job, route"  # never mix replicas of different deployments or namespaces
WINDOWS = ("5m", "30m", "1h", "2h", "6h", "1d", "3d")
# Review-rate drift: absolute gap between the live and the validation review rate, and the
# documents an hour needs before a rate means anything.
REVIEW_DRIFT_MARGIN = 0.15
REVIEW_DRIFT_MIN_DOCUMENTS = 100
REVIEW_BY = "namespace, job, model"
REVIEWS = "infer_review_documents_total"
# Model versions: per-version series are summed over replicas within a deployment.
VERSION_BY = "namespace, job, model, version"
# Stable and canary are compared per model across the jobs of a namespace: in one process (roles
# from INFER_ROUTING) or as two Deployments (the Kubernetes-native canary, k8s/overlays/canary:
# each pod serves one version as its "stable"; the canary release is the job named *-canary).
MODEL_BY = "namespace, model"
CANARY_JOB = ".+-canary"
MODEL_REQUESTS = "infer_model_requests_total"
INFERENCE = "infer_inference_duration_seconds"
COMPARISONS = "infer_shadow_comparisons_total"
VERSION_INFO = "infer_model_version_info"
CANARY_WINDOW = "10m"
CANARY_MIN_REQUESTS = 100  # canary requests in CANARY_WINDOW before a ratio means anything
CANARY_ERROR_FACTOR = 2.0
CANARY_ERROR_MARGIN = 0.01  # absolute: one percentage point above the stable ratio
CANARY_LATENCY_FACTOR = 1.25
SHADOW_WINDOW = "30m"
SHADOW_MIN_AGREEMENT = 0.95
SHADOW_MIN_COMPARISONS = 100  # comparisons in SHADOW_WINDOW
SHADOW_MAX_DROPPED = 0.10  # share of a version's shadow work dropped over 15 m
LOAD_FAILURE_WINDOW = "15m"
# (severity, long window, short window, burn-rate factor)
BURN_ALERTS = (
    ("critical", "1h", "5m", 14.4),
    ("critical", "6h", "30m", 6.0),
    ("warning", "1d", "2h", 3.0),
    ("warning", "3d", "6h", 1.0),
)


@dataclass(frozen=True)
class Recording:
    record: str
    expr: str


@dataclass(frozen=True)
class Alert:
    name: str
    expr: str
    severity: str
    summary: str
    description: str
    for_: str = "0m"
    # What the alert measures, each of which must return series on a live service (the proof
    # evaluates these: an alert's own expression is empty while all is well).
    signals: tuple[str, ...] = field(default=())


def _rate(selector: str, window: str) -> str:
    return f"sum by ({BY}) (rate({REQUESTS}_count{{{selector}}}[{window}]))"


def ratio_or_zero(matching: str, window: str) -> str:
    """Share of model-route requests whose status matches, 0 (not absent) when there are none:
    absent series would make a ratio alert silent and hide a renamed metric."""
    everything = _rate(f'route=~"{MODEL_ROUTES}"', window)
    part = _rate(f'route=~"{MODEL_ROUTES}",{matching}', window)
    return f"({part} or {everything} * 0) / {everything}"


def slow_ratio(window: str) -> str:
    """Share of successful model-route requests slower than their route's latency threshold."""
    fast = " or ".join(
        f'sum by ({BY}) (rate({REQUESTS}_bucket{{route="{route}",status="200",le="{le}"}}'
        f"[{window}]))"
        for route, le in LATENCY_SLO_LE.items()
    )
    total = _rate(f'route=~"{MODEL_ROUTES}",status="200"', window)
    return f"1 - (({fast}) / {total})"


def recordings() -> list[Recording]:
    rules = []
    for w in WINDOWS:
        errors = ratio_or_zero('status=~"5.."', w)
        rules.append(Recording(f"route:infer_request_errors:ratio_rate{w}", errors))
    for w in WINDOWS:
        rules.append(Recording(f"route:infer_request_slow:ratio_rate{w}", slow_ratio(w)))
    rules += [
        Recording("route:infer_request_429:ratio_rate5m", ratio_or_zero('status="429"', "5m")),
        Recording("route:infer_request_504:ratio_rate5m", ratio_or_zero('status="504"', "5m")),
        Recording(
            "route_status:infer_requests:rate5m",
            f"sum by ({BY}, status) (rate({REQUESTS}_count[5m]))",
        ),
    ]
    for q in ("50", "95", "99"):
        rules.append(
            Recording(
                f"route:infer_request_duration_seconds:p{q}_5m",
                f"histogram_quantile(0.{q}, sum by ({BY}, le) (rate({REQUESTS}_bucket[5m])))",
            )
        )
    rules += [
        Recording(
            "model_stage:infer_stage_duration_seconds:p95_5m",
            "histogram_quantile(0.95, sum by (namespace, job, model, stage, le) "
            "(rate(infer_stage_duration_seconds_bucket[5m])))",
        ),
        Recording(
            "model:infer_queue_saturation:ratio",
            "max by (namespace, job, model) (infer_queue_depth)"
            " / max by (namespace, job, model) (infer_queue_capacity)",
        ),
        Recording(
            "model:infer_windows_per_text:ratio_rate5m",
            "sum by (namespace, job, model) (rate(infer_windows_total[5m]))"
            " / sum by (namespace, job, model) (rate(infer_texts_total[5m]))",
        ),
        Recording(
            "model:infer_review:ratio_rate1h",
            f'sum by ({REVIEW_BY}) (rate({REVIEWS}{{decision="review"}}[1h]))'
            f" / sum by ({REVIEW_BY}) (rate({REVIEWS}[1h]))",
        ),
    ]
    return rules + version_recordings()


def _role(role: str) -> str:
    """1 per (namespace, job, model, version) whose role is ``role`` on any replica."""
    return f'max by ({VERSION_BY}) ({VERSION_INFO}{{role="{role}"}})'


def _in_role(series: str, role: str) -> str:
    """``series`` (labelled by VERSION_BY) kept only for versions in ``role``, value unchanged."""
    return f"{series} * on ({VERSION_BY}) group_left {_role(role)}"


def _stable(series: str) -> str:
    """``series`` of the stable versions, outside the jobs of a canary release."""
    return _in_role(f'{series}{{job!~"{CANARY_JOB}"}}', "stable")


def _canary(series: str) -> str:
    """``series`` of the canaries: a version routed as canary, or any version of a canary
    release's job (the Kubernetes-native canary)."""
    return f'{_in_role(series, "canary")} or {series}{{job=~"{CANARY_JOB}"}}'


def version_recordings() -> list[Recording]:
    w = CANARY_WINDOW
    total = f"sum by ({VERSION_BY}) (rate({MODEL_REQUESTS}[{w}]))"
    errors = f'sum by ({VERSION_BY}) (rate({MODEL_REQUESTS}{{outcome="error"}}[{w}]))'
    ratio = f"model_version:infer_model_errors:ratio_rate{w}"
    p95 = f"model_version:infer_inference_duration_seconds:p95_{w}"
    agree = f'sum by ({VERSION_BY}) (rate({COMPARISONS}{{outcome="agree"}}[{SHADOW_WINDOW}]))'
    compared = f"sum by ({VERSION_BY}) (rate({COMPARISONS}[{SHADOW_WINDOW}]))"
    dropped = f"sum by ({VERSION_BY}) (increase(infer_shadow_dropped_total[15m]))"
    done = f"sum by ({VERSION_BY}) (increase({COMPARISONS}[15m]))"
    failed = f"sum by ({VERSION_BY}) (increase(infer_shadow_errors_total[15m]))"
    # Each part 0 (not absent) when another part has series, so the sum exists.
    d, c = f"({dropped} or {done} * 0)", f"({done} or {dropped} * 0)"
    e = f"({failed} or {done} * 0 or {dropped} * 0)"
    return [
        Recording(
            f"model_version:infer_model_requests:increase{w}",
            f"sum by ({VERSION_BY}) (increase({MODEL_REQUESTS}[{w}]))",
        ),
        Recording(ratio, f"({errors} or {total} * 0) / {total}"),
        Recording(
            p95,
            f"histogram_quantile(0.95, sum by ({VERSION_BY}, le) (rate({INFERENCE}_bucket[{w}])))",
        ),
        # The stable version's figures, without its version label, to compare canaries with.
        Recording(
            f"model:infer_model_errors:ratio_rate{w}_stable",
            f"max by ({MODEL_BY}) ({_stable(ratio)})",
        ),
        Recording(
            f"model:infer_inference_duration_seconds:p95_{w}_stable",
            f"max by ({MODEL_BY}) ({_stable(p95)})",
        ),
        Recording(
            f"model_version:infer_shadow_agreement:ratio_rate{SHADOW_WINDOW}",
            f"({agree} or {compared} * 0) / {compared}",  # 0, not absent, if none agreed
        ),
        Recording(
            f"model_version:infer_shadow_comparisons:increase{SHADOW_WINDOW}",
            f"sum by ({VERSION_BY}) (increase({COMPARISONS}[{SHADOW_WINDOW}]))",
        ),
        # Share of the shadow work a version was given that never ran (queue full), 0 when none.
        Recording(
            "model_version:infer_shadow_dropped:ratio_increase15m",
            f"{d} / ({d} + {c} + {e})",
        ),
    ]


def _burn_alert(kind: str, metric: str, budget: float, severity: str) -> Alert:
    pairs = [(long, short, factor) for s, long, short, factor in BURN_ALERTS if s == severity]
    terms = [
        f"(route:{metric}:ratio_rate{long} > {factor * budget:.6g}"
        f" and route:{metric}:ratio_rate{short} > {factor * budget:.6g})"
        for long, short, factor in pairs
    ]
    speed = "fast" if severity == "critical" else "slow"
    windows = " or ".join(f"{factor:g}x over {long}" for long, _, factor in pairs)
    return Alert(
        name=f"Infer{kind}BudgetBurn{speed.capitalize()}",
        expr="\n  or\n".join(terms),
        severity=severity,
        for_="2m" if severity == "critical" else "15m",
        summary=f"{{{{ $labels.route }}}} burns its {kind.lower()} error budget {speed}",
        description=(
            f"{kind} SLO of {{{{ $labels.route }}}}{{{{ with $labels.namespace }}}} in {{{{ . }}}}"
            f"{{{{ end }}}}: the error budget"
            f" ({budget:g} of requests) burns at {windows}; at this pace it is gone in"
            f" {'hours' if severity == 'critical' else 'days'}. Current {kind.lower()}"
            " error ratio: {{ $value | humanizePercentage }}."
        ),
        signals=tuple(
            f"route:{metric}:ratio_rate{w}" for long, short, _ in pairs for w in (long, short)
        ),
    )


def alerts() -> list[Alert]:
    availability_budget = round(1 - AVAILABILITY_TARGET, 6)
    latency_budget = round(1 - LATENCY_TARGET, 6)
    return [
        _burn_alert("Availability", "infer_request_errors", availability_budget, "critical"),
        _burn_alert("Availability", "infer_request_errors", availability_budget, "warning"),
        _burn_alert("Latency", "infer_request_slow", latency_budget, "critical"),
        _burn_alert("Latency", "infer_request_slow", latency_budget, "warning"),
        Alert(
            name="InferQueueSaturated",
            expr="model:infer_queue_saturation:ratio > 0.8",
            for_="5m",
            severity="warning",
            summary="{{ $labels.model }} queue over 80 % full",
            description=(
                "{{ $labels.model }} has {{ $value | humanizePercentage }} of INFER_MAX_QUEUE"
                " requests queued: soon every new request gets 429. Add replicas (HPA) or"
                " CPUs, or look for unusually long documents."
            ),
            signals=("model:infer_queue_saturation:ratio",),
        ),
        Alert(
            name="InferShedding429",
            expr="route:infer_request_429:ratio_rate5m > 0.05",
            for_="5m",
            severity="warning",
            summary="{{ $labels.route }} refuses over 5 % of requests with 429",
            description=(
                "{{ $value | humanizePercentage }} of {{ $labels.route }} requests get 429"
                " (queue full) over 5 minutes: the replicas cannot keep up with the load."
            ),
            signals=("route:infer_request_429:ratio_rate5m",),
        ),
        Alert(
            name="InferDeadline504",
            expr="route:infer_request_504:ratio_rate5m > 0.01",
            for_="5m",
            severity="warning",
            summary="{{ $labels.route }} misses the deadline for over 1 % of requests",
            description=(
                "{{ $value | humanizePercentage }} of {{ $labels.route }} requests end in 504"
                " (INFER_REQUEST_TIMEOUT_S, queue wait included) over 5 minutes."
            ),
            signals=("route:infer_request_504:ratio_rate5m",),
        ),
        Alert(
            name="InferReviewRateDrift",
            expr=(
                "abs(model:infer_review:ratio_rate1h"
                f" - on ({REVIEW_BY}) max by ({REVIEW_BY}) (infer_review_validation_rate))"
                f" > {REVIEW_DRIFT_MARGIN:g}"
                f" and on ({REVIEW_BY}) sum by ({REVIEW_BY}) (increase({REVIEWS}[1h]))"
                f" >= {REVIEW_DRIFT_MIN_DOCUMENTS}"
            ),
            for_="30m",
            severity="warning",
            summary="{{ $labels.model }} review rate drifts from its validation rate",
            description=(
                "The share of {{ $labels.model }} documents sent to a person over 1 h differs"
                f" from the validation review rate by more than {REVIEW_DRIFT_MARGIN:g}"
                " (gap: {{ $value | humanizePercentage }}): the traffic no longer resembles the"
                " validation data, or the model changed. Compare infer_review_reasons_total by"
                " class; recalibrate on recent data (docs/review.md)."
            ),
            signals=("model:infer_review:ratio_rate1h", "infer_review_validation_rate"),
        ),
        Alert(
            name="InferReadinessFlapping",
            expr=(
                "changes(infer_ready[30m])"
                " + on (namespace, job, instance) changes(process_start_time_seconds[30m]) > 3"
            ),
            severity="warning",
            summary="{{ $labels.instance }} keeps restarting or turning unready",
            description=(
                "{{ $labels.instance }} changed readiness or restarted {{ $value }} times in 30"
                " minutes (OOM kills, failing probes, crash loops)."
            ),
            signals=(
                "changes(infer_ready[30m])"
                " + on (namespace, job, instance) changes(process_start_time_seconds[30m])",
            ),
        ),
        Alert(
            name="InferNotReady",
            expr="infer_ready == 0",
            for_="10m",
            severity="warning",
            summary="{{ $labels.instance }} not ready for 10 minutes",
            description=(
                "{{ $labels.instance }} has not been ready for 10 minutes (start-up takes"
                " seconds to 5 minutes): models still loading, or failed to load (/readyz says"
                " why)."
            ),
            signals=("infer_ready",),
        ),
        *version_alerts(),
    ]


def version_alerts() -> list[Alert]:
    w, sw = CANARY_WINDOW, SHADOW_WINDOW
    canary_ratio = _canary(f"model_version:infer_model_errors:ratio_rate{w}")
    stable_ratio = f"model:infer_model_errors:ratio_rate{w}_stable"
    canary_p95 = _canary(f"model_version:infer_inference_duration_seconds:p95_{w}")
    stable_p95 = f"model:infer_inference_duration_seconds:p95_{w}_stable"
    enough = (
        f"and on ({VERSION_BY}) model_version:infer_model_requests:increase{w}"
        f" >= {CANARY_MIN_REQUESTS}"
    )
    failures = "infer_model_load_failures_total"
    failure_by = "namespace, job, instance, model, version, reason"
    version = "{{ $labels.model }} version {{ $labels.version }}"
    return [
        Alert(
            name="InferCanaryErrorRate",
            expr=(
                f"(\n  ({canary_ratio})\n"
                f"    > on ({MODEL_BY}) group_left {stable_ratio} * {CANARY_ERROR_FACTOR:g}\n"
                f"    > on ({MODEL_BY}) group_left {stable_ratio} + {CANARY_ERROR_MARGIN:g}\n)\n"
                f"{enough}"
            ),
            for_="5m",
            severity="warning",
            summary=f"{version} (canary) fails more often than the stable version",
            description=(
                f"Over {w}, {version} (canary) answered {{{{ $value | humanizePercentage }}}}"
                f" of its requests with an error: more than {CANARY_ERROR_FACTOR:g}x the stable"
                f" version's error ratio and more than {CANARY_ERROR_MARGIN * 100:g} percentage"
                f" point above it (at least {CANARY_MIN_REQUESTS} canary requests). Roll the"
                " canary back: set its weight to 0 (docs/deployment/model-versions.md)."
            ),
            signals=(canary_ratio, stable_ratio),
        ),
        Alert(
            name="InferCanaryLatency",
            expr=(
                f"({canary_p95})\n"
                f"  > on ({MODEL_BY}) group_left {stable_p95} * {CANARY_LATENCY_FACTOR:g}\n"
                f"{enough}"
            ),
            for_="10m",
            severity="warning",
            summary=f"{version} (canary) is slower than the stable version",
            description=(
                f"Over {w}, the p95 model time of {version} (canary) is"
                " {{ $value | humanizeDuration }}, more than"
                f" {CANARY_LATENCY_FACTOR:g}x the stable version's. Compare the two in the"
                " dashboard's per-version p95 panel; roll the canary back if it stays."
            ),
            signals=(canary_p95, stable_p95),
        ),
        Alert(
            name="InferShadowDisagreement",
            expr=(
                f"model_version:infer_shadow_agreement:ratio_rate{sw} < {SHADOW_MIN_AGREEMENT:g}\n"
                f"and on ({VERSION_BY}) model_version:infer_shadow_comparisons:increase{sw}"
                f" >= {SHADOW_MIN_COMPARISONS}"
            ),
            for_="10m",
            severity="warning",
            summary=f"{version} (shadow) disagrees with the served answers",
            description=(
                f"Over {sw}, {version} (shadow) gave the same entities / decisions as the served"
                " version on only {{ $value | humanizePercentage }} of the compared requests"
                f" (threshold {SHADOW_MIN_AGREEMENT:g}, at least {SHADOW_MIN_COMPARISONS}"
                " comparisons). Do not promote it before the difference is understood."
            ),
            signals=(
                f"model_version:infer_shadow_agreement:ratio_rate{sw}",
                f"model_version:infer_shadow_comparisons:increase{sw}",
            ),
        ),
        Alert(
            name="InferShadowDropping",
            expr=(f"model_version:infer_shadow_dropped:ratio_increase15m > {SHADOW_MAX_DROPPED:g}"),
            for_="15m",
            severity="warning",
            summary=f"{version} (shadow) drops its shadow work",
            description=(
                f"{{{{ $value | humanizePercentage }}}} of the shadow requests for {version} were"
                " dropped over 15 m (INFER_SHADOW_QUEUE full): the served answers are unaffected,"
                " but the agreement is measured on a smaller, biased sample. Lower the shadow"
                " fraction or add CPUs."
            ),
            signals=("model_version:infer_shadow_dropped:ratio_increase15m",),
        ),
        Alert(
            name="InferModelLoadFailed",
            expr=(
                f"sum by ({failure_by}) (increase({failures}[{LOAD_FAILURE_WINDOW}])) > 0\n"
                "or\n"
                f"sum by ({failure_by})"
                f" ({failures} unless {failures} offset {LOAD_FAILURE_WINDOW}) > 0"
            ),
            severity="warning",
            summary=f"{version} failed to load on {{{{ $labels.instance }}}}",
            description=(
                f"{version} was refused at load on {{{{ $labels.instance }}}} (reason:"
                " {{ $labels.reason }}) in the last 15 minutes. It receives no traffic; the"
                " version already serving keeps serving. GET /v1/models shows the reason"
                " (a replica with no loadable version stays unready: InferNotReady)."
            ),
            signals=(failures, "infer_model_version_state"),
        ),
    ]


def groups() -> list[dict[str, object]]:
    """The rule groups, as Prometheus reads them."""
    recording = [{"record": r.record, "expr": r.expr} for r in recordings()]
    alerting = [
        {
            "alert": a.name,
            "expr": a.expr,
            "for": a.for_,
            "labels": {"severity": a.severity, "service": "nlp-inference"},
            "annotations": {"summary": a.summary, "description": a.description},
        }
        for a in alerts()
    ]
    return [
        {"name": "nlp-inference.recording", "rules": recording},
        {"name": "nlp-inference.alerts", "rules": alerting},
    ]


def all_expressions() -> dict[str, str]:
    """Name -> PromQL of everything that must return series on a live, loaded service."""
    found = {r.record: r.record for r in recordings()}
    found |= {f"{r.record} (expr)": r.expr for r in recordings()}
    for a in alerts():
        for i, signal in enumerate(a.signals):
            found[f"{a.name} signal {i}"] = signal
    return found
