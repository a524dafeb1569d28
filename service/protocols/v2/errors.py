"""How service errors read in the protocol: REST ``{"error": "<message>"}`` with an HTTP status,
gRPC a status code and the same message."""

from __future__ import annotations

import grpc

from service.errors import ServiceError

# Invalid input and exceeded limits are 422 on /v1; the protocol answers client errors 400.
_REST_STATUS = {422: 400}
_GRPC_CODES = {
    400: grpc.StatusCode.INVALID_ARGUMENT,
    401: grpc.StatusCode.UNAUTHENTICATED,
    404: grpc.StatusCode.NOT_FOUND,
    408: grpc.StatusCode.DEADLINE_EXCEEDED,
    413: grpc.StatusCode.INVALID_ARGUMENT,
    422: grpc.StatusCode.INVALID_ARGUMENT,
    429: grpc.StatusCode.RESOURCE_EXHAUSTED,
    503: grpc.StatusCode.UNAVAILABLE,
    504: grpc.StatusCode.DEADLINE_EXCEEDED,
}


def message(error: ServiceError) -> str:
    """The error's message, naming the field and limit when the service error has them."""
    detail = error.detail
    text = detail.message
    if detail.limit is not None and str(detail.limit) not in text:
        text += f" (limit {detail.limit})"
    return text


def rest_status(error: ServiceError) -> int:
    return _REST_STATUS.get(error.status, error.status)


def grpc_code(error: ServiceError) -> grpc.StatusCode:
    return _GRPC_CODES.get(error.status, grpc.StatusCode.INTERNAL)


class Unauthenticated(ServiceError):
    status, type = 401, "unauthorized"
