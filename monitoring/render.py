"""Draw the dashboard from real data: every panel's queries through Prometheus' range API, laid
out as in Grafana (3 panels a row), with matplotlib. Grafana itself is not a Debian package and
cannot be fetched here, so the README's picture is this rendering of the same queries."""

from __future__ import annotations

import io
import math
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from monitoring.dashboard import PANELS, concrete

UNITS = {"s": "seconds", "reqps": "requests/s", "percentunit": "ratio", "short": ""}
_LEGEND = re.compile(r"\{\{\s*(\w+)\s*\}\}")


def _range(prometheus: str, expr: str, start: float, end: float, step: float) -> list[Any]:
    params: dict[str, str | float] = {"query": expr, "start": start, "end": end, "step": step}
    body = httpx.get(f"{prometheus}/api/v1/query_range", params=params, timeout=60).json()
    if body.get("status") != "success":
        raise ValueError(f"{expr}: {body.get('error')}")
    result: list[Any] = body["data"]["result"]
    return result


def _legend(template: str, labels: dict[str, str]) -> str:
    return _LEGEND.sub(lambda m: labels.get(m.group(1), ""), template).strip()


def render(prometheus: str, start: float, end: float, out: Path, rate: str = "15s") -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.style.use("dark_background")
    columns = 3
    rows = math.ceil(len(PANELS) / columns)
    fig, axes = plt.subplots(rows, columns, figsize=(18, 4.1 * rows), facecolor="#111217")
    step = max(1.0, (end - start) / 240)
    for ax, panel in zip(axes.flat, PANELS, strict=False):
        ax.set_facecolor("#181b1f")
        for target in panel.targets:
            for series in _range(prometheus, concrete(target.expr, rate), start, end, step):
                name = _legend(target.legend, series["metric"])
                points = [(float(t) - start, float(v)) for t, v in series["values"]]
                points = [(t, v) for t, v in points if math.isfinite(v)]
                if points:
                    ax.plot(*zip(*points, strict=True), linewidth=1.4, label=name)
        ax.set_title(panel.title, fontsize=10, loc="left", color="#d8d9da")
        ax.set_ylabel(UNITS.get(panel.unit, panel.unit), fontsize=8)
        ax.set_xlabel("seconds since start", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(color="#2c3235", linewidth=0.6)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=6.5, loc="upper left", ncol=2, framealpha=0.3)
    for ax in list(axes.flat)[len(PANELS) :]:
        ax.axis("off")
    when = datetime.fromtimestamp(start, UTC).strftime("%Y-%m-%d %H:%M UTC")
    fig.suptitle(
        f"NLP inference service: dashboard queries on a real Prometheus ({when}, "
        "python -m monitoring.proof)",
        color="#d8d9da",
        fontsize=12,
    )
    fig.tight_layout(rect=(0, 0, 1, 0.98))
    out.parent.mkdir(parents=True, exist_ok=True)
    buffer = io.BytesIO()
    fig.savefig(buffer, dpi=80, facecolor=fig.get_facecolor())
    plt.close(fig)
    from PIL import Image  # matplotlib's own dependency

    # 256 colours are plenty for lines on a flat background: a third of the bytes in git.
    Image.open(buffer).convert("RGB").quantize(256).save(out, optimize=True)
