"""REST bodies of the Open Inference Protocol (``$inference_request``, ``$inference_response``,
metadata and readiness objects), as pydantic models."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

Parameters = dict[str, Any]


def _integral(value: Any) -> Any:
    """1.0 is an integer by JSON Schema's definition: accept it as 1 (strict otherwise)."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


# A dimension: an integer as JSON Schema defines it; "1" and true are refused (strict models).
Dimension = Annotated[int, BeforeValidator(_integral)]


class RequestInput(BaseModel):
    # clients add fields (kserve: model_name); strict: what the schema says is what is accepted
    model_config = ConfigDict(extra="ignore", strict=True)

    name: str
    shape: list[Dimension]
    datatype: str
    parameters: Parameters | None = None
    data: Any = Field(default=None, description="Row-major elements; nested arrays allowed.")


class RequestOutput(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)  # clients add fields

    name: str
    parameters: Parameters | None = None


class InferenceRequest(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)  # clients add fields (model_name)

    id: str | None = None
    parameters: Parameters | None = None
    inputs: list[RequestInput]
    outputs: list[RequestOutput] | None = None


class ResponseOutput(BaseModel):
    name: str
    shape: list[int]
    datatype: str
    parameters: Parameters | None = None
    data: list[Any] | None = None


class InferenceResponse(BaseModel):
    model_name: str
    model_version: str | None = None
    id: str | None = None
    parameters: Parameters | None = None
    outputs: list[ResponseOutput]


class TensorMetadata(BaseModel):
    name: str
    datatype: str
    shape: list[int]


class ModelMetadata(BaseModel):
    name: str
    versions: list[str]
    platform: str
    inputs: list[TensorMetadata]
    outputs: list[TensorMetadata]


class ServerMetadata(BaseModel):
    name: str
    version: str
    extensions: list[str]


class ServerLive(BaseModel):
    live: bool


class ServerReady(BaseModel):
    ready: bool


class ModelReady(BaseModel):
    name: str
    ready: bool


class ErrorResponse(BaseModel):
    error: str
