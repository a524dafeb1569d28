"""The Open Inference Protocol over REST: ``/v2`` health, metadata and infer routes.

Bodies follow the protocol's JSON (``schemas``); the binary tensor data extension is supported
both ways (``Inference-Header-Content-Length``; ``binary_data_size`` on inputs,
``binary_data_output`` / per-output ``binary_data`` for answers), as ``tritonclient.http`` uses it
by default. Errors are ``{"error": "<message>"}``: 400 for a bad tensor, parameter or exceeded
limit, 404 for an unknown model or version, 429/503/504 as on /v1.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from functools import wraps
from typing import Any, ParamSpec

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from pydantic import ValidationError

from service.errors import ErrorBody, ServiceError
from service.observability.request_context import annotate
from service.protocols.v2 import core, errors, schemas
from service.protocols.v2.tensors import BadTensor, InputTensor, deserialize_bytes, flatten

router = APIRouter(tags=["Open Inference Protocol (v2)"])

HEADER_LENGTH = "inference-header-content-length"
BINARY_TYPE = "application/octet-stream"
EXTENSIONS = ["binary_tensor_data"]
ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": schemas.ErrorResponse, "description": text}
    for code, text in (
        (400, "Bad tensor, parameter or body; a limit exceeded"),
        (429, "The model's queue is full; retry after Retry-After seconds"),
        (503, "Models not loaded yet, or shutting down"),
        (504, "The request missed its deadline"),
    )
}
# A path the router cannot match (a model name holding "/") is answered by the HTTP layer in the
# /v1 error shape; an unknown model or version by the route, in the protocol's.
ERRORS[404] = {
    "model": schemas.ErrorResponse | ErrorBody,
    "description": "No such model or version",
}
# The HTTP layer reads the body before the route: a BOM or UTF-16/32 body (400), a body too
# large (413) or too slow (408) is answered in the /v1 error shape (found by schemathesis).
ERRORS[400] = {
    "model": schemas.ErrorResponse | ErrorBody,
    "description": "Bad tensor, parameter or body; a limit exceeded (a body that is not UTF-8 "
    "JSON: the HTTP layer's error shape)",
}
ERRORS[408] = {"model": ErrorBody, "description": "The body did not arrive in time (HTTP layer)"}
ERRORS[413] = {"model": ErrorBody, "description": "The body is too large (HTTP layer)"}
ERRORS[500] = {"model": ErrorBody, "description": "An unexpected failure (as on /v1)"}
READY_ERRORS = {
    **ERRORS,
    400: {"model": schemas.ModelReady | schemas.ErrorResponse, "description": "Not ready"},
}
P = ParamSpec("P")


def protocol_errors(handler: Callable[P, Awaitable[Response]]) -> Callable[P, Awaitable[Response]]:
    """Service errors as the protocol's ``{"error": "..."}`` with its status."""

    @wraps(handler)
    async def wrapped(*args: P.args, **kwargs: P.kwargs) -> Response:
        try:
            return await handler(*args, **kwargs)
        except ServiceError as exc:
            annotate(error=exc.type)
            body = schemas.ErrorResponse(error=errors.message(exc)).model_dump()
            return JSONResponse(body, errors.rest_status(exc), exc.headers)

    return wrapped


def _registry(request: Request) -> Any:
    return request.app.state.registry


@router.get("/v2", response_model=schemas.ServerMetadata, summary="Server metadata")
async def server_metadata() -> schemas.ServerMetadata:
    return schemas.ServerMetadata(
        name=core.SERVER_NAME, version=core.server_version(), extensions=EXTENSIONS
    )


NOT_READY: dict[int | str, dict[str, Any]] = {
    400: {"model": schemas.ServerReady, "description": "Not ready (false is a 4xx)"}
}


@router.get(
    "/v2/health/live",
    response_model=schemas.ServerLive,
    summary="Liveness: 200 while the process answers",
)
async def live() -> Response:
    return JSONResponse({"live": True})


@router.get(
    "/v2/health/ready",
    response_model=schemas.ServerReady,
    responses=NOT_READY,
    summary="Readiness (as /readyz): 200 when every model is loaded, 400 otherwise",
)
async def ready(request: Request) -> Response:
    is_ready = core.server_ready(_registry(request))
    return JSONResponse({"ready": is_ready}, 200 if is_ready else 400)


@router.get(
    "/v2/models/{name}",
    response_model=schemas.ModelMetadata,
    responses=ERRORS,
    summary="Model metadata: its input and output tensors",
)
@router.get(
    "/v2/models/{name}/versions/{version}",
    response_model=schemas.ModelMetadata,
    responses=ERRORS,
    summary="Model metadata at a version",
)
@protocol_errors
async def model_metadata(request: Request, name: str, version: str | None = None) -> Response:
    meta = core.model_metadata(_registry(request), name, version)
    body = schemas.ModelMetadata(
        name=meta.name,
        versions=meta.versions,
        platform=meta.platform,
        inputs=[schemas.TensorMetadata(**vars(t)) for t in meta.inputs],
        outputs=[schemas.TensorMetadata(**vars(t)) for t in meta.outputs],
    )
    return JSONResponse(body.model_dump())


@router.get(
    "/v2/models/{name}/ready",
    response_model=schemas.ModelReady,
    responses=READY_ERRORS,
    summary="Model readiness: 200 when ready, 400 when not",
)
@router.get(
    "/v2/models/{name}/versions/{version}/ready",
    response_model=schemas.ModelReady,
    responses=READY_ERRORS,
    summary="Model readiness at a version",
)
@protocol_errors
async def model_ready(request: Request, name: str, version: str | None = None) -> Response:
    is_ready = core.model_ready(_registry(request), name, version)
    return JSONResponse({"name": name, "ready": is_ready}, 200 if is_ready else 400)


@router.post(
    "/v2/models/{name}/infer",
    response_model=schemas.InferenceResponse,
    responses=ERRORS,
    summary="Inference: a BYTES tensor 'text' of shape [n] in, the task's tensors out",
)
@router.post(
    "/v2/models/{name}/versions/{version}/infer",
    response_model=schemas.InferenceResponse,
    responses=ERRORS,
    summary="Inference at a version",
)
@protocol_errors
async def infer(request: Request, name: str, version: str | None = None) -> Response:
    body = await request.body()
    header, binary = _split(body, request.headers.get(HEADER_LENGTH))
    try:
        parsed = schemas.InferenceRequest.model_validate_json(header)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "body"
        raise BadTensor(f"invalid inference request: {where}: {first['msg']}") from None
    inputs = _inputs(parsed, binary)
    parameters = parsed.parameters or {}
    requested = [o.name for o in parsed.outputs] if parsed.outputs else None
    result = await core.infer(_registry(request), name, version, inputs, parameters, requested)
    default_binary = parameters.get("binary_data_output") is True
    explicit = {o.name: (o.parameters or {}).get("binary_data") for o in parsed.outputs or []}
    binary_names = {
        t.name
        for t in result.outputs
        if explicit.get(t.name) is True or (explicit.get(t.name) is None and default_binary)
    }
    return _response(result, parsed.id, binary_names)


def _split(body: bytes, header_length: str | None) -> tuple[bytes, bytes]:
    """The JSON part and the binary part of a body (binary tensor data extension)."""
    if header_length is None:
        return body, b""
    if not header_length.isdigit() or int(header_length) > len(body):
        raise BadTensor(
            f"Inference-Header-Content-Length {header_length!r} is not a length within the "
            f"{len(body)}-byte body"
        )
    n = int(header_length)
    return body[:n], body[n:]


def _inputs(parsed: schemas.InferenceRequest, binary: bytes) -> list[InputTensor]:
    """Input tensors from JSON ``data`` or from the binary part, in order."""
    out, offset = [], 0
    for tensor in parsed.inputs:
        size = (tensor.parameters or {}).get("binary_data_size")
        if size is not None:
            if isinstance(size, bool) or not isinstance(size, int) or size < 0:
                raise BadTensor(f"input {tensor.name!r}: binary_data_size must be a count of bytes")
            if offset + size > len(binary):
                raise BadTensor(
                    f"input {tensor.name!r}: binary_data_size {size} runs past the binary data"
                )
            if tensor.data is not None:
                raise BadTensor(f"input {tensor.name!r} has both data and binary_data_size")
            chunk = binary[offset : offset + size]
            offset += size
            elements = _binary_elements(tensor, chunk)
        else:
            if tensor.data is None:
                raise BadTensor(f"input {tensor.name!r} has no data")
            elements = _json_elements(tensor)
        out.append(InputTensor(tensor.name, tensor.datatype, tensor.shape, elements))
    if offset != len(binary):
        raise BadTensor(f"{len(binary) - offset} bytes of binary data belong to no input")
    return out


def _json_elements(tensor: schemas.RequestInput) -> list[Any]:
    """Row-major elements of JSON ``data``: an array, flat or nested as the shape says (so a
    one-dimensional tensor's data is a flat array; the OpenAPI document says so exactly)."""
    data = tensor.data
    flat = isinstance(data, list) and not any(isinstance(item, list) for item in data)
    if not isinstance(data, list) or (len(tensor.shape) < 2 and not flat):
        raise BadTensor(
            f"input {tensor.name!r}: data must be an array of its elements (nested only as "
            f"shape {tensor.shape} says)"
        )
    return flatten(data)


def _binary_elements(tensor: schemas.RequestInput, chunk: bytes) -> list[Any]:
    if tensor.datatype != "BYTES":
        # Only BYTES inputs exist; report the datatype, not the bytes.
        raise BadTensor(f"input {tensor.name!r} has datatype {tensor.datatype}; expected BYTES")
    return list(deserialize_bytes(chunk, tensor.name))


def _response(result: core.Inferred, request_id: str | None, binary: set[str]) -> Response:
    outputs, chunks = [], []
    for tensor in result.outputs:
        out: dict[str, Any] = {
            "name": tensor.name,
            "datatype": tensor.datatype,
            "shape": tensor.shape,
        }
        if tensor.name in binary:
            raw = tensor.raw()
            chunks.append(raw)
            out["parameters"] = {"binary_data_size": len(raw)}
        else:
            out["data"] = tensor.json_data()
        outputs.append(out)
    body: dict[str, Any] = {
        "model_name": result.model_name,
        "model_version": result.model_version,
        "outputs": outputs,
    }
    if request_id is not None:
        body["id"] = request_id
    encoded = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    if not chunks:
        return Response(encoded, media_type="application/json")
    headers = {"Inference-Header-Content-Length": str(len(encoded))}
    return Response(encoded + b"".join(chunks), media_type=BINARY_TYPE, headers=headers)
