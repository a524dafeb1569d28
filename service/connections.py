"""Connection hygiene for uvicorn's h11 server: head deadline, connection cap, JSON refusals.

uvicorn has an idle keep-alive timeout but nothing bounds the time a client takes to send a
request head: a socket that connects and sends nothing (or a byte a minute) stays open forever,
and enough of them exhaust the file descriptors. This protocol arms a timer whenever it waits for
a request head (a new connection, or after a response on a keep-alive connection) and closes the
connection when the head has not arrived in time. The body has its own deadline in the app
(``service.api.middleware.BodyLimit``). Connections beyond the cap get 503 JSON
``too_many_connections`` and are closed; malformed HTTP gets 400 JSON instead of uvicorn's text.

A client that does not read its answers (the send buffer stays full, uvicorn stops writing) gets
``write_timeout_s``: then the connection is aborted, so such sockets cannot hold the connection
cap. Before that, when the cap is reached, a new connection evicts the one whose writes have been
stalled longest instead of being refused: clients that read their answers are served at once
however many non-reading sockets hold the cap. A request head larger than ``max_header_bytes``
gets 400 JSON however it arrives (h11's own limit only holds while the head is incomplete: a
large head in one packet passed it).
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

from service.errors import ErrorDetail, error_response


def _json(status: int, reason: bytes, kind: str, message: str, extra: dict[str, Any]) -> bytes:
    body = json.dumps({"error": {"type": kind, "message": message, **extra}}).encode()
    head = (
        f"HTTP/1.1 {status} {reason.decode()}\r\ncontent-type: application/json\r\n"
        f"content-length: {len(body)}\r\nconnection: close\r\n\r\n"
    )
    return head.encode() + body


class GuardedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with a request-head deadline and a connection cap."""

    header_timeout_s: float = 10.0
    max_connections: int = 512
    write_timeout_s: float = 30.0
    max_header_bytes: int = 16_384

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._write_timer: asyncio.TimerHandle | None = None
        self._stalled_since: float | None = None  # when the send buffer filled up (loop time)
        self._head_timer: asyncio.TimerHandle | None = None
        self._waiting_cycle: object = None
        self._head_bytes = False

    # --- the request-head deadline -------------------------------------------------------------

    def _arm(self) -> None:
        """Start the deadline for the next request head."""
        self._disarm()
        self._waiting_cycle = self.cycle
        self._head_bytes = False
        self._head_timer = self.loop.call_later(self.header_timeout_s, self._head_timeout)

    def _disarm(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timeout(self) -> None:
        self._head_timer = None
        if self.transport.is_closing():
            return
        if self._head_bytes:  # part of a head arrived: say why before closing
            message = f"the request head did not arrive within {self.header_timeout_s:g} s"
            extra = {"field": "headers", "limit": int(self.header_timeout_s)}
            self.transport.write(_json(408, b"Request Timeout", "request_timeout", message, extra))
        self.transport.close()

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if len(self.connections) > self.max_connections and not self._evict_stalled():
            self.app = _too_many_connections(self.max_connections)
        else:
            self.app = _head_limited(self.app, self.max_header_bytes)
        self._arm()

    def _evict_stalled(self) -> bool:
        """Abort the connection whose writes have been stalled longest (a client that does not
        read its answers), making room for this one; False when no connection is stalled."""
        stalled = [
            c
            for c in self.connections
            if isinstance(c, GuardedH11Protocol) and c._stalled_since is not None and c is not self
        ]
        if not stalled:
            return False
        oldest = min(stalled, key=lambda c: c._stalled_since or 0.0)
        oldest._write_timeout()
        self.connections.discard(oldest)  # connection_lost follows on the loop
        return True

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        if self._write_timer is not None:
            self._write_timer.cancel()
            self._write_timer = None
        super().connection_lost(exc)

    # --- the response write deadline -----------------------------------------------------------

    def pause_writing(self) -> None:
        """The send buffer is full: the client has that long to read before we abort."""
        super().pause_writing()
        if self._write_timer is None:
            self._stalled_since = self.loop.time()
            self._write_timer = self.loop.call_later(self.write_timeout_s, self._write_timeout)

    def resume_writing(self) -> None:
        if self._write_timer is not None:
            self._write_timer.cancel()
            self._write_timer = None
        self._stalled_since = None
        super().resume_writing()

    def _write_timeout(self) -> None:
        if self._write_timer is not None:
            self._write_timer.cancel()
        self._write_timer = None
        self._stalled_since = None
        self.transport.abort()  # close() would wait to flush what the client never reads

    def data_received(self, data: bytes) -> None:
        if self._head_timer is not None:
            self._head_bytes = True
        super().data_received(data)

    def handle_events(self) -> None:
        super().handle_events()
        if self._head_timer is not None and self.cycle is not self._waiting_cycle:
            self._disarm()  # a new request's head is complete

    def on_response_complete(self) -> None:
        self._arm()  # before super(): it may start a pipelined request, which disarms
        super().on_response_complete()

    # --- JSON instead of uvicorn's text/plain -----------------------------------------------

    def send_400_response(self, msg: str) -> None:
        body = json.dumps(
            {"error": {"type": "bad_request", "message": f"invalid HTTP request: {msg}"}}
        ).encode()
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"connection", b"close"),
        ]
        for event in (
            h11.Response(status_code=400, headers=headers, reason=b"Bad Request"),
            h11.Data(data=body),
            h11.EndOfMessage(),
        ):
            self.transport.write(self.conn.send(event) or b"")
        self.transport.close()


def _too_many_connections(cap: int) -> Any:
    async def refuse(scope: Any, receive: Any, send: Any) -> None:
        detail = ErrorDetail(
            type="too_many_connections",
            message=f"the server holds {cap} connections (the limit); retry shortly",
            limit=cap,
        )
        headers = {"Connection": "close", "Retry-After": "1"}
        await error_response(503, detail, headers)(scope, receive, send)

    return refuse


def head_bytes(scope: Any) -> int:
    """Bytes of the request line and headers as they came (``METHOD target HTTP/1.1``, CRLFs)."""
    target = len(scope.get("raw_path") or b"") + len(scope.get("query_string") or b"") + 1
    line = len(scope["method"]) + target + len(scope.get("http_version", "1.1")) + 9
    return line + sum(len(k) + len(v) + 4 for k, v in scope.get("headers", [])) + 2


def _head_limited(app: Any, limit: int) -> Any:
    async def limited(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and (size := head_bytes(scope)) > limit:
            detail = ErrorDetail(
                type="bad_request",
                message=f"the request head is {size} bytes; the limit is {limit}",
                field="headers",
                limit=limit,
            )
            await error_response(400, detail, {"Connection": "close"})(scope, receive, send)
            return
        await app(scope, receive, send)

    return limited


def guarded_protocol(
    header_timeout_s: float,
    max_connections: int,
    write_timeout_s: float = 30.0,
    max_header_bytes: int = 16_384,
) -> type[GuardedH11Protocol]:
    """The protocol class for ``uvicorn.Config(http=...)`` with these limits."""
    attributes = {
        "header_timeout_s": header_timeout_s,
        "max_connections": max_connections,
        "write_timeout_s": write_timeout_s,
        "max_header_bytes": max_header_bytes,
    }
    return type("GuardedH11", (GuardedH11Protocol,), attributes)
