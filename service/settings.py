"""All service settings, from environment variables prefixed ``INFER_`` (or a ``.env`` file)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from service.runtime.cpus import available_cpus
from service.versions.routing import RoutingPolicy


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="INFER_", env_file=".env", extra="ignore")

    bundles_dir: Path = Field(
        default=Path(".cache/bundles"),
        description="Directory whose sub-directories are bundles (each with a bundle.json).",
    )
    models: list[str] = Field(
        default_factory=list,
        description="Bundle names to load (JSON list); empty loads every bundle in bundles_dir.",
    )
    host: str = Field(default="127.0.0.1", description="Address uvicorn binds to.")
    port: int = Field(default=8000, ge=1, le=65535, description="Port uvicorn listens on.")
    intra_op_threads: int = Field(
        default_factory=available_cpus,
        ge=1,
        description="ONNX Runtime threads per model; default: CPUs allowed by affinity and cgroup.",
    )
    max_batch_size: int = Field(
        default=32, ge=1, le=1024, description="Most windows sent to ONNX Runtime in one call."
    )
    max_batch_tokens: int = Field(
        default=16_384,
        ge=64,
        description="Most padded tokens (batch size x longest window) in one ONNX Runtime call.",
    )
    slice_tokens: int = Field(
        default=1024,
        ge=64,
        description="A request over this many padded tokens (or over the batch budget) runs in "
        "slices of at most this size, one per worker turn, with other requests in between: "
        "bounds how long a short request waits behind a large one.",
    )
    # 2 ms: while ONNX Runtime's threads hold both cores, the event loop admits requests slowly;
    # a short pause once a queue exists lets more of them join the batch (README, Batching).
    batch_wait_ms: float = Field(
        default=2.0,
        ge=0,
        le=1000,
        description="When requests are already queued, wait up to this long for more to fill a "
        "batch; an idle model never waits.",
    )
    max_queue: int = Field(
        default=128,
        ge=1,
        description="Most requests queued per model; beyond it requests get 429 with Retry-After.",
    )
    max_queue_tokens: int = Field(
        default=131_072,
        ge=1,
        description="Most tokens of work queued per model (waiting requests and the unrun slices "
        "of large ones); a request that would pass it gets 429 with Retry-After, before any model "
        "work. Admission by work, not by request count.",
    )
    shed_late_requests: bool = Field(
        default=True,
        description="Refuse at once (429 with Retry-After) a request that the work queued ahead of "
        "it would make miss its deadline, at the model's recent throughput, instead of letting it "
        "wait and expire (504).",
    )
    large_request_order: Literal["deadline", "round-robin"] = Field(
        default="deadline",
        description="Which large (sliced) request's slice runs next: deadline (earliest deadline "
        "first: admitted requests finish one after another) or round-robin (all advance together; "
        "under overload all finish late). Whole requests run between slices either way.",
    )
    max_tokenizing: int = Field(
        default=4,
        ge=1,
        description="Most large requests per model waiting for (or in) tokenization, which runs "
        "off the model's worker; more get 429.",
    )
    request_timeout_s: float = Field(
        default=60.0,
        gt=0,
        description="Deadline per request (queue + inference); past it the request gets 504.",
    )
    providers: list[str] = Field(
        default_factory=lambda: ["CUDAExecutionProvider", "CPUExecutionProvider"],
        min_length=1,
        description="ONNX Runtime execution providers in order of preference (JSON list); those "
        "this onnxruntime build lacks are skipped, CPU is the fallback.",
    )
    max_text_chars: int = Field(
        default=20_000, ge=1, description="Most characters in one NER text; longer gets 422."
    )
    max_document_chars: int = Field(
        default=100_000, ge=1, description="Most characters in one posture document (422 beyond)."
    )
    posture_aggregation: Literal["max", "mean"] | None = Field(
        default=None,
        description="Override the bundle's window aggregation for long documents (max or mean).",
    )
    parse_intent_model: str | None = Field(
        default=None,
        description="Bundle /v1/parse takes intents from (a single-label classifier); default: "
        "the only one loaded.",
    )
    parse_ner_model: str | None = Field(
        default=None, description="Bundle /v1/parse takes entities from; default: the only NER one."
    )
    max_texts: int = Field(default=64, ge=1, description="Most texts in one request; more get 422.")
    max_request_tokens: int = Field(
        default=32_768,
        ge=1,
        description="Most tokens (after tokenization, all texts together) in one request; more "
        "get 422. Bounds the work one request can ask for, whatever its characters.",
    )
    max_body_bytes: int = Field(
        default=2 * 1024 * 1024, ge=1024, description="Largest request body; larger gets 413."
    )
    header_timeout_s: float = Field(
        default=10.0,
        gt=0,
        description="Most seconds from a connection's start (or its previous response) to the end "
        "of the request headers; then the connection is closed (slow or silent clients).",
    )
    body_timeout_s: float = Field(
        default=30.0,
        gt=0,
        description="Most seconds to receive a request body; then 408 request_timeout.",
    )
    write_timeout_s: float = Field(
        default=30.0,
        gt=0,
        description="Most seconds a response may wait for a client that does not read it (the "
        "send buffer stays full); then the connection is aborted.",
    )
    keepalive_timeout_s: float = Field(
        default=5.0, gt=0, description="Idle keep-alive connections are closed after this long."
    )
    max_connections: int = Field(
        default=512,
        ge=1,
        description="Most open connections; a request on a connection beyond it gets 503 "
        "too_many_connections (lowered to the open-file limit minus a margin if that is smaller).",
    )
    max_header_bytes: int = Field(
        default=16_384,
        ge=1024,
        description="Largest request head (request line and headers), however it arrives; "
        "beyond it 400 bad_request.",
    )
    log_level: Literal["critical", "error", "warning", "info", "debug"] = Field(
        default="info", description="Log level of the service and uvicorn."
    )
    log_format: Literal["json", "text"] = Field(
        default="json",
        description="json: one JSON object per line (for log collectors); text: readable lines.",
    )
    drain_seconds: float = Field(
        default=0.0,
        ge=0,
        le=300,
        description="After SIGTERM: keep serving this long with /readyz at 503 (so load balancers"
        " drop the pod) before the listener closes; 0 when a preStop hook already waits.",
    )
    graceful_timeout_seconds: int = Field(
        default=30,
        ge=1,
        description="After the drain: most seconds in-flight requests get to finish before cancel.",
    )
    api_keys: list[SecretStr] = Field(
        default_factory=list,
        description="API keys (JSON list) for 'Authorization: Bearer KEY' or 'X-API-Key'; auth is"
        " off when neither this nor api_keys_file names a key.",
    )
    api_keys_file: Path | None = Field(
        default=None,
        description="File with one API key per line (blank lines, # comments ignored); adds to"
        " api_keys.",
    )
    grpc_enabled: bool = Field(
        default=False,
        description="Also serve the Open Inference Protocol (KServe v2) over gRPC on grpc_port.",
    )
    grpc_port: int = Field(
        default=8001,
        ge=1,
        le=65535,
        description="Port of the gRPC server (with grpc_enabled), on the same host as HTTP.",
    )
    metrics_auth: bool = Field(
        default=False, description="Require an API key for /metrics too (when auth is on)."
    )
    redact_hash_key: SecretStr | None = Field(
        default=None,
        description="HMAC-SHA256 key of /v1/redact mode 'hash'; without it (or the file) that mode "
        "is refused with 422.",
    )
    redact_hash_key_file: Path | None = Field(
        default=None,
        description="File holding the HMAC key of /v1/redact mode 'hash' (surrounding whitespace "
        "stripped); used when redact_hash_key is not set.",
    )

    watch: bool = Field(
        default=False,
        description="Poll bundles_dir: a new complete version directory is loaded (verified, "
        "self-checked, warmed) beside the others; a removed one is drained and unloaded "
        "(docs/operating/versions.md).",
    )
    watch_interval_s: float = Field(
        default=5.0, gt=0, description="Seconds between two polls of bundles_dir (with watch)."
    )
    admin_keys: list[SecretStr] = Field(
        default_factory=list,
        description="Keys (JSON list) of the admin API (/v1/admin/...: load, unload, routing), "
        "separate from api_keys; the admin API answers 404 unless this or admin_keys_file names "
        "a key.",
    )
    admin_keys_file: Path | None = Field(
        default=None,
        description="File with one admin key per line (blank lines, # comments ignored); adds to"
        " admin_keys.",
    )
    routing: dict[str, RoutingPolicy] = Field(
        default_factory=dict,
        description='Initial traffic policy per model name (JSON object), e.g. {"ner-food": '
        '{"weights": {"1": 90, "2": 10}, "sticky_header": "x-caller-id", "shadow": {"version": '
        '"3", "fraction": 0.1}}}; a model without one sends all traffic to its highest ready '
        "version.",
    )
    shadow_queue: int = Field(
        default=64,
        ge=1,
        description="Most shadow copies waiting per model; more are dropped (and counted), never "
        "delaying the served answer.",
    )
    max_model_memory_mb: int | None = Field(
        default=None,
        ge=1,
        description="Most resident memory (MB) all loaded model versions may hold; a load that "
        "would pass it is refused. Default: 80% of the cgroup memory limit, else no limit.",
    )

    def redact_key(self) -> bytes | None:
        """The configured HMAC key of redaction mode 'hash', or None."""
        if self.redact_hash_key is not None:
            return self.redact_hash_key.get_secret_value().encode("utf-8") or None
        if self.redact_hash_key_file is not None:
            return self.redact_hash_key_file.read_bytes().strip() or None
        return None

    @field_validator("redact_hash_key_file")
    @classmethod
    def _key_file_exists(cls, value: Path | None) -> Path | None:
        if value is not None and not value.is_file():
            raise ValueError(f"redact_hash_key_file {value} is not a file")
        return value

    @field_validator("bundles_dir")
    @classmethod
    def _bundles_dir_exists(cls, value: Path) -> Path:
        if not value.is_dir():
            raise ValueError(f"bundles directory {value} does not exist")
        return value
