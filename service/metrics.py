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
# Rows (texts, windows) per batch: powers of two up to well past INFER_MAX_BATCH_SIZE.
BATCH_SIZE_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)
# Padded tokens per ONNX call: from one short window to a batch of 4,096-token windows.
BATCH_TOKEN_BUCKETS = (16, 64, 256, 1024, 2048, 4096, 8192, 16384, 32768, 65536, 131072)

REQUEST_LATENCY = Histogram(
    f"{PREFIX}_request_duration_seconds",
    "HTTP request latency, by route template, method and status code.",
    ("route", "method", "status"),
    buckets=LATENCY_BUCKETS,
)
STAGE_LATENCY = Histogram(
    f"{PREFIX}_stage_duration_seconds",
    "Time per stage (queue wait, tokenize, inference, decode) for one request's batch, by model.",
    ("model", "version", "stage"),
    buckets=LATENCY_BUCKETS,
)
INFERENCE_LATENCY = Histogram(
    f"{PREFIX}_inference_duration_seconds",
    "End-to-end model time for one request (tokenize + ONNX Runtime + decode), by model.",
    ("model", "version"),
    buckets=LATENCY_BUCKETS,
)
TEXTS = Counter(f"{PREFIX}_texts_total", "Texts processed, by model.", ("model", "version"))
TOKENS = Counter(
    f"{PREFIX}_tokens_total", "Content tokens processed, by model.", ("model", "version")
)
WINDOWS = Counter(f"{PREFIX}_windows_total", "Model windows run, by model.", ("model", "version"))
FAILURES = Counter(
    f"{PREFIX}_failures_total",
    "Requests that ended in an error, by model and error type.",
    ("model", "version", "error"),
)
IN_FLIGHT = Gauge(f"{PREFIX}_requests_in_flight", "HTTP requests being processed.")
MODEL_INFO = Gauge(
    f"{PREFIX}_model_info",
    "Loaded models (value 1), with name, version, task, ONNX sha256 prefix, provider and "
    "quantization (int8-static, int8-dynamic, or none for fp32 graphs).",
    ("model", "version", "task", "sha256", "provider", "quantized"),
)
READY = Gauge(f"{PREFIX}_ready", "1 once every bundle is loaded and warmed up, else 0.")
BATCH_SIZE = Histogram(
    f"{PREFIX}_batch_size",
    "Batch sizes, by model and unit: requests and texts merged into one pipeline call, "
    "windows in one ONNX Runtime call.",
    ("model", "version", "unit"),
    buckets=BATCH_SIZE_BUCKETS,
)
BATCH_TOKENS = Histogram(
    f"{PREFIX}_batch_tokens",
    "Padded tokens (rows x longest row) in one ONNX Runtime call, by model.",
    ("model", "version"),
    buckets=BATCH_TOKEN_BUCKETS,
)
CALL_TOKENS = Counter(
    f"{PREFIX}_call_tokens_total",
    "Token positions computed by ONNX Runtime calls, by model and kind: useful (real tokens, "
    "special tokens included) or padding (positions added to make a batch rectangular). The "
    "padded share is padding / (useful + padding); length buckets keep it small.",
    ("model", "version", "kind"),
)
TRUNCATED = Counter(
    f"{PREFIX}_truncated_texts_total",
    "Texts not read to their end because the request asked truncation 'truncate', by model.",
    ("model", "version"),
)
REDACTED_SPANS = Counter(
    f"{PREFIX}_redacted_spans_total",
    "Spans replaced by /v1/redact (after filters and overlap merging), by model and entity label.",
    ("model", "version", "label"),
)
QUEUE_DEPTH = Gauge(
    f"{PREFIX}_queue_depth", "Requests waiting for a model's worker.", ("model", "version")
)
QUEUED_TOKENS = Gauge(
    f"{PREFIX}_queued_tokens",
    "Tokens of admitted work waiting for a model's worker (queued requests and unrun slices); "
    "bounded by INFER_MAX_QUEUE_TOKENS.",
    ("model", "version"),
)
SHED_REASONS = ("requests", "tokens", "deadline", "tokenizing")
SHED = Counter(
    f"{PREFIX}_shed_total",
    "Requests refused with 429 before any model work, by model and reason: requests (queue full "
    "by count), tokens (queued work over INFER_MAX_QUEUE_TOKENS), deadline (the work ahead would "
    "make it miss its deadline), tokenizing (too many large requests waiting for tokenization).",
    ("model", "version", "reason"),
)
CANCELLED = Counter(
    f"{PREFIX}_cancelled_total",
    "Work given up because nobody waits for it any more (deadline passed, client disconnected, "
    "shutdown), by model and unit: requests dropped with work left, windows never run (or cut "
    "short), ONNX Runtime calls terminated while running.",
    ("model", "version", "unit"),
)
QUEUE_CAPACITY = Gauge(
    f"{PREFIX}_queue_capacity",
    "Most requests that may queue per model (INFER_MAX_QUEUE); beyond it requests get 429.",
    ("model",),
)
MODEL_LOAD_FAILURES = Counter(
    f"{PREFIX}_model_load_failures",
    "Model version loads that failed, by model, version and reason: manifest, sha256, "
    "selfcheck, memory or error. At start-up the replica stays unready (/readyz says why); a "
    "version loaded later never receives traffic (/v1/models says why).",
    ("model", "version", "reason"),
)
REVIEW_DOCUMENTS = Counter(
    f"{PREFIX}_review_documents_total",
    "Documents answered by a model with per-class automation, by model and decision: review (a "
    "person must look: docs/review.md) or automatic. Review rate = review / all.",
    ("model", "version", "decision"),
)
REVIEW_REASONS = Counter(
    f"{PREFIX}_review_reasons_total",
    "Labels sent to a person, by model, class and reason (class_not_automated, near_threshold).",
    ("model", "version", "label", "reason"),
)
VALIDATION_REVIEW_RATE = Gauge(
    f"{PREFIX}_review_validation_rate",
    "Share of the validation documents that needed review when the bundle was calibrated (its "
    "manifest); the review-rate drift alert compares live traffic with it.",
    ("model",),
)

# --- versions (docs/operating/versions.md) ------------------------------------------------------
MODEL_REQUESTS = Counter(
    f"{PREFIX}_model_requests",
    "Requests answered by a model version, by outcome: error (a 5xx: the version failed) or ok "
    "(anything else, refusals of bad input included).",
    ("model", "version", "outcome"),
)
VERSION_INFO = Gauge(
    f"{PREFIX}_model_version_info",
    "Loaded versions (value 1) and their role: stable (the largest traffic share), canary (other "
    "versions with traffic), shadow (receives copies only), idle (no traffic).",
    ("model", "version", "role"),
)
TRAFFIC_SHARE = Gauge(
    f"{PREFIX}_model_traffic_share",
    "Share of a model's requests routed to a version (0..1), by the current policy.",
    ("model", "version"),
)
VERSION_STATE = Gauge(
    f"{PREFIX}_model_version_state",
    "1 for a version's current state (loading, self_checking, warming, ready, draining, failed).",
    ("model", "version", "state"),
)
MODEL_MEMORY = Gauge(
    f"{PREFIX}_model_memory_bytes",
    "Resident memory a version added to the process when it loaded (RSS growth).",
    ("model", "version"),
)
SHADOW_COMPARISONS = Counter(
    f"{PREFIX}_shadow_comparisons",
    "Shadow answers compared with the served answer, by shadow version and outcome (agree: the "
    "same entities or the same decided classes).",
    ("model", "version", "outcome"),
)
SHADOW_DROPPED = Counter(
    f"{PREFIX}_shadow_dropped",
    "Shadow copies dropped because the model's shadow queue was full (INFER_SHADOW_QUEUE).",
    ("model", "version"),
)
SHADOW_ERRORS = Counter(
    f"{PREFIX}_shadow_errors",
    "Shadow copies that failed on the shadow version (never seen by the caller).",
    ("model", "version"),
)
