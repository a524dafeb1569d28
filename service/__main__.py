"""``python -m service``: run the API with uvicorn using the ``INFER_*`` settings.

SIGTERM starts a graceful drain instead of uvicorn's immediate listener close: ``/readyz`` turns
503 at once, requests keep being served for ``INFER_DRAIN_SECONDS`` (a load balancer may still
route some here until it sees the pod unready), then uvicorn closes the listener, lets in-flight
and queued requests finish (at most ``INFER_GRACEFUL_TIMEOUT_SECONDS``) and the process exits 0.
"""

from __future__ import annotations

import contextvars
import logging
import resource
import signal
import sys
import time
from types import FrameType

import uvicorn

from service.app import create_app
from service.connections import guarded_protocol
from service.metrics import READY
from service.observability import tracing
from service.observability.logs import configure_logging
from service.registry import ModelRegistry
from service.settings import Settings

log = logging.getLogger("service.shutdown")


class DrainingServer(uvicorn.Server):
    """uvicorn, with SIGTERM meaning "drain, then stop" and a clean exit status afterwards."""

    def __init__(self, config: uvicorn.Config, registry: ModelRegistry, drain_s: float) -> None:
        super().__init__(config)
        self.registry = registry
        self.drain_s = drain_s
        self.stop_at: float | None = None
        self.exit_status = 0

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if sig != signal.SIGTERM:
            super().handle_exit(sig, frame)  # Ctrl+C: uvicorn's own behaviour
            return
        if self.stop_at is not None:
            return  # a repeated SIGTERM does not cut the drain short
        # Not recorded in uvicorn's captured signals: it would re-raise SIGTERM after the
        # shutdown, and the process would die by the signal (status 143) instead of exiting 0.
        self.registry.draining = True
        READY.set(0)
        self.stop_at = time.monotonic() + self.drain_s
        # A signal handler runs in whatever request's context is current: log outside of it, or
        # the line would carry that request's id.
        contextvars.Context().run(
            log.warning,
            "SIGTERM: draining for %.1f s, then finishing in-flight requests",
            self.drain_s,
        )

    async def on_tick(self, counter: int) -> bool:
        if self.stop_at is not None and time.monotonic() >= self.stop_at:
            self.should_exit = True
        if self.registry.load_error is not None and self.exit_status == 0:
            # The broken-bundle policy (docs/reliability.md): a bundle that fails to load, self-
            # check or warm up stops the process (exit 3), like one that fails verification.
            log.error("exiting (status 3): a bundle cannot be served: %s", self.registry.load_error)
            self.exit_status = 3
            self.should_exit = True
        return await super().on_tick(counter)


def connection_cap(wanted: int) -> int:
    """``wanted``, lowered so that connections can never exhaust the open-file limit (model
    files, sockets and the listener need some descriptors too)."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or wanted <= soft - 64:
        return wanted
    cap = max(1, soft - 64)
    log.warning(
        "INFER_MAX_CONNECTIONS=%d exceeds the open-file limit %d: using %d", wanted, soft, cap
    )
    return cap


def main() -> None:
    settings = Settings()
    configure_logging(settings.log_level, settings.log_format)
    tracing.configure()  # off unless OTEL_TRACES_EXPORTER / an OTLP endpoint is set
    app = create_app(settings)
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        log_config=None,  # configure_logging owns the handlers (structured lines)
        access_log=False,  # RequestContext writes the access log, with the request id
        timeout_graceful_shutdown=settings.graceful_timeout_seconds,
        # h11, with deadlines for request heads and a connection cap (service/connections.py);
        # the body deadline is in the app (BodyLimit), the idle keep-alive one is uvicorn's.
        http=guarded_protocol(
            settings.header_timeout_s,
            connection_cap(settings.max_connections),
            settings.write_timeout_s,
            settings.max_header_bytes,
        ),
        timeout_keep_alive=settings.keepalive_timeout_s,  # type: ignore[arg-type]
        h11_max_incomplete_event_size=settings.max_header_bytes,
    )
    server = DrainingServer(config, app.state.registry, settings.drain_seconds)
    server.run()
    if server.exit_status:
        sys.exit(server.exit_status)


if __name__ == "__main__":
    main()
