"""The Open Inference Protocol over gRPC: ``inference.GRPCInferenceService`` on its own port
(``INFER_GRPC_ENABLED``, ``INFER_GRPC_PORT``), in the same event loop and on the same data plane
as the HTTP routes.

- Auth: with API keys configured, every RPC but ServerLive/ServerReady (the probes) needs
  ``authorization: Bearer KEY`` or ``x-api-key: KEY`` metadata (the HTTP keys), else
  UNAUTHENTICATED.
- Limits: the /v1 ones (texts, characters, tokens per request) through the data plane; a message
  over ``INFER_MAX_BODY_BYTES`` is refused by gRPC (RESOURCE_EXHAUSTED).
- Deadlines: the client's deadline, capped by ``INFER_REQUEST_TIMEOUT_S`` (the batcher's).
- Cancellation: a cancelled or expired RPC cancels its handler, and so its queued or running
  work in the model's batcher, as a client disconnect does on HTTP.
- Metrics: ``infer_request_duration_seconds`` with route ``/inference.GRPCInferenceService/<RPC>``,
  method ``GRPC`` and the gRPC status name; the data plane's per-model metrics as on HTTP.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import grpc

from service.errors import DeadlineExceeded, ServiceError
from service.keys import key_matches, load_api_keys, presented_key
from service.metrics import REQUEST_LATENCY
from service.protocols.v2 import core, errors
from service.protocols.v2.proto import open_inference_pb2 as pb
from service.protocols.v2.proto import open_inference_pb2_grpc as pb_grpc
from service.protocols.v2.tensors import BadTensor, InputTensor, deserialize_bytes
from service.registry import ModelRegistry
from service.settings import Settings

log = logging.getLogger("service.grpc")

SERVICE = "inference.GRPCInferenceService"
OPEN_RPCS = frozenset({"ServerLive", "ServerReady"})
T = TypeVar("T")


def _parameters(params: Any) -> dict[str, Any]:
    """``map<string, InferParameter>`` as plain values."""
    out: dict[str, Any] = {}
    for key, value in params.items():
        choice = value.WhichOneof("parameter_choice")
        out[key] = getattr(value, choice) if choice else None
    return out


def _contents(tensor: Any) -> list[Any]:
    c = tensor.contents
    for field in (
        "bytes_contents",
        "bool_contents",
        "int_contents",
        "int64_contents",
        "uint_contents",
        "uint64_contents",
        "fp32_contents",
        "fp64_contents",
    ):
        values = getattr(c, field)
        if len(values):
            return list(values)
    return []


def _inputs(request: Any) -> list[InputTensor]:
    raw = request.raw_input_contents
    if raw and len(raw) != len(request.inputs):
        raise BadTensor(
            f"raw_input_contents has {len(raw)} entries for {len(request.inputs)} inputs"
        )
    out = []
    for i, tensor in enumerate(request.inputs):
        if raw:
            if tensor.datatype == "BYTES":
                elements: list[Any] = list(deserialize_bytes(raw[i], tensor.name))
            else:  # refused by its datatype; its elements are never read
                elements = []
        else:
            elements = _contents(tensor)
        out.append(InputTensor(tensor.name, tensor.datatype, list(tensor.shape), elements))
    return out


class InferenceServicer(pb_grpc.GRPCInferenceServiceServicer):
    def __init__(self, registry: ModelRegistry, keys: list[bytes]) -> None:
        self.registry = registry
        self.keys = keys

    async def _serve(
        self, rpc: str, context: grpc.aio.ServicerContext, work: Callable[[], Awaitable[T]]
    ) -> T:
        """Auth, errors as status codes, the deadline, metrics around one RPC."""
        started = time.perf_counter()
        code = grpc.StatusCode.OK
        try:
            if self.keys and rpc not in OPEN_RPCS:
                self._authenticate(context)
            remaining = context.time_remaining()
            timeout = self.registry.settings.request_timeout_s
            if remaining is not None:
                timeout = min(timeout, max(remaining, 0.0))
            try:
                async with asyncio.timeout(timeout):
                    return await work()
            except TimeoutError:
                raise DeadlineExceeded(
                    f"no answer within the deadline ({timeout:.3g} s)", limit=int(timeout) or 1
                ) from None
        except ServiceError as exc:
            code = errors.grpc_code(exc)
            await context.abort(code, errors.message(exc))
            raise  # abort raises; this keeps type checkers informed
        except asyncio.CancelledError:
            code = grpc.StatusCode.CANCELLED
            raise
        except Exception:
            if code is grpc.StatusCode.OK:  # not an abort of ours
                code = grpc.StatusCode.INTERNAL
                log.exception("gRPC %s failed", rpc)
            raise
        finally:
            REQUEST_LATENCY.labels(f"/{SERVICE}/{rpc}", "GRPC", code.name).observe(
                time.perf_counter() - started
            )

    def _authenticate(self, context: grpc.aio.ServicerContext) -> None:
        metadata = [
            (k.lower().encode("latin-1"), v if isinstance(v, bytes) else v.encode("utf-8"))
            for k, v in context.invocation_metadata() or ()
        ]
        candidate = presented_key(metadata)
        if candidate is None:
            raise errors.Unauthenticated(
                "a valid API key is required (metadata authorization: Bearer KEY or x-api-key)"
            )
        if not key_matches(candidate, self.keys):
            raise errors.Unauthenticated("the API key is not valid")

    async def ServerLive(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        async def work() -> Any:
            return pb.ServerLiveResponse(live=True)

        return await self._serve("ServerLive", context, work)

    async def ServerReady(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        async def work() -> Any:
            return pb.ServerReadyResponse(ready=core.server_ready(self.registry))

        return await self._serve("ServerReady", context, work)

    async def ModelReady(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        async def work() -> Any:
            ready = core.model_ready(self.registry, request.name, request.version or None)
            return pb.ModelReadyResponse(ready=ready)

        return await self._serve("ModelReady", context, work)

    async def ServerMetadata(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        async def work() -> Any:
            return pb.ServerMetadataResponse(
                name=core.SERVER_NAME, version=core.server_version(), extensions=[]
            )

        return await self._serve("ServerMetadata", context, work)

    async def ModelMetadata(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        async def work() -> Any:
            meta = core.model_metadata(self.registry, request.name, request.version or None)
            spec = pb.ModelMetadataResponse.TensorMetadata
            return pb.ModelMetadataResponse(
                name=meta.name,
                versions=meta.versions,
                platform=meta.platform,
                inputs=[spec(name=t.name, datatype=t.datatype, shape=t.shape) for t in meta.inputs],
                outputs=[
                    spec(name=t.name, datatype=t.datatype, shape=t.shape) for t in meta.outputs
                ],
            )

        return await self._serve("ModelMetadata", context, work)

    async def ModelInfer(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        async def work() -> Any:
            result = await core.infer(
                self.registry,
                request.model_name,
                request.model_version or None,
                _inputs(request),
                _parameters(request.parameters),
                [o.name for o in request.outputs] or None,
            )
            out = pb.ModelInferResponse.InferOutputTensor
            return pb.ModelInferResponse(
                model_name=result.model_name,
                model_version=result.model_version,
                id=request.id,
                outputs=[
                    out(name=t.name, datatype=t.datatype, shape=t.shape) for t in result.outputs
                ],
                raw_output_contents=[t.raw() for t in result.outputs],
            )

        return await self._serve("ModelInfer", context, work)


async def start(settings: Settings, registry: ModelRegistry) -> grpc.aio.Server:
    """Serve gRPC on ``settings.host:settings.grpc_port`` in the running event loop."""
    server = grpc.aio.server(
        options=[
            ("grpc.max_receive_message_length", settings.max_body_bytes),
            ("grpc.max_send_message_length", -1),
            ("grpc.so_reuseport", 0),
        ],
        maximum_concurrent_rpcs=settings.max_connections,
    )
    servicer = InferenceServicer(registry, load_api_keys(settings))
    pb_grpc.add_GRPCInferenceServiceServicer_to_server(servicer, server)  # type: ignore[no-untyped-call]
    address = f"{settings.host}:{settings.grpc_port}"
    if server.add_insecure_port(address) == 0:
        raise OSError(f"gRPC: cannot listen on {address}")
    await server.start()
    log.info("gRPC (Open Inference Protocol) on %s", address)
    return server


async def stop(server: grpc.aio.Server, grace_s: float) -> None:
    """Refuse new RPCs, give running ones ``grace_s`` seconds, cancel the rest."""
    await server.stop(grace_s)
