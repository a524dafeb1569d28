"""REST bodies of the Open Inference Protocol (``$inference_request``, ``$inference_response``,
metadata and readiness objects), as pydantic models."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

Parameters = dict[str, Any]


class RequestInput(BaseModel):
    model_config = ConfigDict(extra="ignore")  # clients add fields (kserve: model_name)

    name: str
    shape: list[int]
    datatype: str
    parameters: Parameters | None = None
    data: Any = Field(default=None, description="Row-major elements; nested arrays allowed.")


class RequestOutput(BaseModel):
    model_config = ConfigDict(extra="ignore")  # clients add fields (kserve: model_name)

    name: str
    parameters: Parameters | None = None


class InferenceRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")  # clients add fields (kserve: model_name)

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
