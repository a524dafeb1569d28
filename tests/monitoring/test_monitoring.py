"""Offline checks of the generated rules and dashboard: up to date, one source for both rule
forms, and every metric and label they query is one the service exports. (``make rules-test``
runs promtool on them; ``make prom-proof`` runs every query against a real Prometheus.)"""

from __future__ import annotations

import json
import re

import yaml
from prometheus_client.metrics import MetricWrapperBase
from prometheus_client.utils import floatToGoString

from monitoring import dashboard, rules
from monitoring.generate import OUT, files
from service import metrics
from tests.deploy.test_manifests import of_kind, render

SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_count", "_sum"), "gauge": ("",)}
TARGET_LABELS = {"namespace", "job", "instance"}  # added by Prometheus or the Operator
SELECTOR = re.compile(r"(?<![:\w])(infer_[a-z_]+)(?:\{([^}]*)\})?")


def exported() -> dict[str, set[str]]:
    """Series name -> label names, for every metric in service/metrics.py."""
    names: dict[str, set[str]] = {}
    for value in vars(metrics).values():
        if isinstance(value, MetricWrapperBase):
            for suffix in SUFFIXES[value._type]:
                labels = set(value._labelnames)
                names[value._name + suffix] = labels | ({"le"} if suffix == "_bucket" else set())
    return names


def every_query() -> list[str]:
    found = [r.expr for r in rules.recordings()]
    found += [a.expr for a in rules.alerts()] + [s for a in rules.alerts() for s in a.signals]
    found += [t.expr for p in dashboard.PANELS for t in p.targets]
    return found


def test_generated_files_are_up_to_date() -> None:
    stale = [p.name for p, text in files().items() if not p.exists() or p.read_text() != text]
    assert not stale, f"run python -m monitoring.generate: {stale} differ"


def test_prometheusrule_and_plain_rules_file_hold_the_same_groups() -> None:
    plain = yaml.safe_load((OUT / "rules.yaml").read_text())
    operator = yaml.safe_load((OUT / "prometheusrule.yaml").read_text())
    assert operator["kind"] == "PrometheusRule"
    assert operator["spec"]["groups"] == plain["groups"] == rules.groups()


def test_every_metric_and_label_queried_is_exported_by_the_service() -> None:
    known = exported()
    recorded = {r.record for r in rules.recordings()}
    used = set()
    for expr in every_query():
        for name, matchers in SELECTOR.findall(expr):
            used.add(name)
            assert name in known, f"{name} is not a metric of service/metrics.py ({expr})"
            for label in re.findall(r"(\w+)\s*[=!]~?", matchers):
                assert label in known[name] | TARGET_LABELS, f"{name} has no label {label}"
        for name in re.findall(r"\b\w+:\w+:\w+\b", expr):
            assert name in recorded, f"{name} is used but not recorded"
    # Nothing the dashboard should show is forgotten: every metric but the info gauge is queried.
    families = {re.sub(r"_(bucket|count|sum)$", "", n) for n in used}
    forgotten = {re.sub(r"_(bucket|count|sum)$", "", n) for n in known} - families
    assert forgotten <= {"infer_model_info", "infer_inference_duration_seconds"}, forgotten


def test_latency_slo_thresholds_are_bucket_bounds_as_exported() -> None:
    bounds = {floatToGoString(b) for b in metrics.LATENCY_BUCKETS}
    assert set(rules.LATENCY_SLO_LE.values()) <= bounds


def test_every_alert_has_labels_annotations_and_a_live_signal() -> None:
    for group in rules.groups():
        for rule in group["rules"]:  # type: ignore[attr-defined]
            if "alert" in rule:
                assert rule["labels"]["severity"] in {"critical", "warning"}
                assert rule["annotations"]["summary"] and rule["annotations"]["description"]
    for alert in rules.alerts():
        assert alert.signals, f"{alert.name} has nothing the live proof can evaluate"
    assert len({a.name for a in rules.alerts()}) == len(rules.alerts())


def test_dashboard_is_importable_grafana_json() -> None:
    board = json.loads((OUT / "dashboard.json").read_text())
    assert board["uid"] == "nlp-inference" and board["schemaVersion"] >= 36
    cells = set()
    for panel in board["panels"]:
        assert panel["targets"] and panel["datasource"]["uid"] == "${datasource}"
        pos = panel["gridPos"]
        area = {
            (x, y)
            for x in range(pos["x"], pos["x"] + pos["w"])
            for y in range(pos["y"], pos["y"] + pos["h"])
        }
        assert not cells & area, f"{panel['title']} overlaps another panel"
        cells |= area
        assert pos["x"] >= 0 and pos["x"] + pos["w"] <= 24
    assert len({p["id"] for p in board["panels"]}) == len(board["panels"])
    assert "$__rate_interval" not in dashboard.concrete(board["panels"][0]["targets"][0]["expr"])


def test_monitored_overlay_ships_the_rules_and_the_dashboard() -> None:
    docs = render("overlays/monitored")
    (rule,) = of_kind(docs, "PrometheusRule")
    assert rule["spec"]["groups"] == rules.groups()
    (board,) = [
        d for d in of_kind(docs, "ConfigMap") if d["metadata"]["name"].endswith("dashboard")
    ]
    assert board["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert json.loads(board["data"]["dashboard.json"]) == dashboard.dashboard()
    assert not of_kind(render("base"), "PrometheusRule"), "the CRD must stay optional"
