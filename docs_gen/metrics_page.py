"""docs/reference/metrics.md: every ``infer_*`` metric in the Prometheus registry once the service
app module is imported (every module that defines a metric is imported by then)."""

from __future__ import annotations

import importlib

from prometheus_client import REGISTRY
from prometheus_client.metrics import MetricWrapperBase

from docs_gen.markdown import HEADER, code, table

# Importing these registers every metric the service exposes.
MODULES = ("service.metrics", "service.app")
PREFIX = "infer_"


def metrics() -> list[MetricWrapperBase]:
    for name in MODULES:
        importlib.import_module(name)
    found = [
        c
        for c in list(REGISTRY._collector_to_names)
        if isinstance(c, MetricWrapperBase) and c._name.startswith(PREFIX)
    ]
    return sorted(found, key=lambda m: m._name)


def exposed_name(metric: MetricWrapperBase) -> str:
    name = str(metric._name)
    return name + ("_total" if metric._type == "counter" else "")


def page() -> str:
    rows = []
    for m in metrics():
        labels = ", ".join(code(label) for label in m._labelnames)
        extra = ""
        upper = getattr(m, "_upper_bounds", None)
        if m._type == "histogram" and upper:
            bounds = ", ".join(f"{b:g}" for b in upper if b != float("inf"))
            extra = f" Buckets: {bounds}."
        rows.append([code(exposed_name(m)), str(m._type), labels, str(m._documentation) + extra])
    return (
        HEADER.format(source="the Prometheus registry (service/metrics.py)")
        + "# Metrics\n\n"
        + "Every metric `GET /metrics` exposes under the `infer_` prefix (besides the Python "
        "client's `process_*` and `python_*` ones). Histograms also expose `_bucket`, `_sum` and "
        "`_count` series; counters the `_total` name shown. How they are used: "
        "[Operating](../operating/metrics.md).\n\n"
        + table(["metric", "type", "labels", "meaning"], rows)
    )
