"""Every Prometheus metric of the service, in one place, with one prefix and shared buckets."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

PREFIX = "infer"
# From 1 ms (a short utterance) to 60 s (a very long document), roughly ×2 per bucket.
LATENCY_BUCKETS = (
    0.001,
    0.002,
    0.004,
    0.008,
    0.016,
    0.032,
    0.064,
    0.128,
    0.256,
    0.5,
    1.0,
    2.0,
    4.0,
    8.0,
    16.0,
    32.0,
    60.0,
)

REQUEST_LATENCY = Histogram(
    f"{PREFIX}_request_duration_seconds",
    "HTTP request latency, by route template, method and status code.",
    ("route", "method", "status"),
    buckets=LATENCY_BUCKETS,
)
STAGE_LATENCY = Histogram(
    f"{PREFIX}_stage_duration_seconds",
    "Time per pipeline stage (tokenize, inference, decode) for one request's batch, by model.",
    ("model", "stage"),
    buckets=LATENCY_BUCKETS,
)
INFERENCE_LATENCY = Histogram(
    f"{PREFIX}_inference_duration_seconds",
    "End-to-end model time for one request (tokenize + ONNX Runtime + decode), by model.",
    ("model",),
    buckets=LATENCY_BUCKETS,
)
TEXTS = Counter(f"{PREFIX}_texts_total", "Texts processed, by model.", ("model",))
TOKENS = Counter(f"{PREFIX}_tokens_total", "Content tokens processed, by model.", ("model",))
WINDOWS = Counter(f"{PREFIX}_windows_total", "Model windows run, by model.", ("model",))
FAILURES = Counter(
    f"{PREFIX}_failures_total",
    "Requests that ended in an error, by model and error type.",
    ("model", "error"),
)
IN_FLIGHT = Gauge(f"{PREFIX}_requests_in_flight", "HTTP requests being processed.")
MODEL_INFO = Gauge(
    f"{PREFIX}_model_info",
    "Loaded models (value 1), with name, version, task, ONNX sha256 prefix and provider.",
    ("model", "version", "task", "sha256", "provider"),
)
READY = Gauge(f"{PREFIX}_ready", "1 once every bundle is loaded and warmed up, else 0.")
