"""All service settings, from environment variables prefixed ``INFER_`` (or a ``.env`` file)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from service.runtime.cpus import available_cpus


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
    max_texts: int = Field(default=64, ge=1, description="Most texts in one request; more get 422.")
    max_body_bytes: int = Field(
        default=2 * 1024 * 1024, ge=1024, description="Largest request body; larger gets 413."
    )
    log_level: str = Field(default="info", description="uvicorn log level.")

    @field_validator("bundles_dir")
    @classmethod
    def _bundles_dir_exists(cls, value: Path) -> Path:
        if not value.is_dir():
            raise ValueError(f"bundles directory {value} does not exist")
        return value
