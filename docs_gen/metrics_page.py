"""docs/reference/metrics.md: every ``infer_*`` metric in the Prometheus registry once every module
of the service package is imported."""

from __future__ import annotations

import importlib
import pkgutil

from prometheus_client import REGISTRY
from prometheus_client.metrics import MetricWrapperBase

from docs_gen.markdown import HEADER, code, table

PACKAGE = "service"
PREFIX = "infer_"


def _import_serving_modules() -> None:
    """Import every module of the service package (serving code never imports torch), so a metric
    defined anywhere in it is registered; ``__main__`` modules are skipped (they start things)."""
    package = importlib.import_module(PACKAGE)
    for info in pkgutil.walk_packages(package.__path__, prefix=f"{PACKAGE}."):
        if info.name.rsplit(".", 1)[-1] != "__main__":
            importlib.import_module(info.name)


def metrics() -> list[MetricWrapperBase]:
    _import_serving_modules()
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
