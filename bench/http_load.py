"""The service over HTTP: start ``python -m service`` on 127.0.0.1, closed-loop load, stop by PID.

Each of ``concurrency`` clients sends its next request as soon as its previous answer arrived
(asyncio, one keep-alive HTTP/1.1 connection per client). The load generator shares the
machine's CPUs with the server; its own CPU time per request is reported so that cost is visible.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from bench.stats import Summary, proc_status_kib, process_cpu_s, summarize
from loadtest.server import running_service as launch_service


@dataclass(frozen=True)
class Server:
    base: str
    pid: int

    def rss_kib(self) -> dict[str, int]:
        return {f: proc_status_kib(self.pid, f) for f in ("VmRSS", "VmHWM")}


@contextmanager
def running_service(
    bundles: Path, models: list[str], log: Path, settings: dict[str, str] | None = None
) -> Iterator[Server]:
    """The service with only ``models`` loaded (``settings``: more ``INFER_*`` variables); ready
    (warm-up done) before it is yielded."""
    env = {
        "INFER_MODELS": "[" + ",".join(f'"{m}"' for m in models) + "]",
        "INFER_MAX_DOCUMENT_CHARS": "400000",  # a 10,000-token random-word document is ~80k
        **(settings or {}),
    }
    # a base Longformer bundle loads and warms up slowly
    with launch_service(bundles, log, env, ready_timeout=300, stop_timeout=30) as service:
        yield Server(service.base, service.pid)


@dataclass(frozen=True)
class LoadResult:
    summary: Summary
    errors: int
    client_cpu_ms_per_request: float

    def as_dict(self) -> dict[str, Any]:
        return {
            **self.summary.as_dict(),
            "errors": self.errors,
            "client_cpu_ms_per_request": self.client_cpu_ms_per_request,
        }


class _Connection:
    """A bare HTTP/1.1 keep-alive connection: httpx costs 2.5-5 ms of client CPU per request,
    which on 2 cores is taken from the server being measured; this costs a fraction of that."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, host: str, port: int) -> _Connection:
        reader, writer = await asyncio.open_connection(host, port)
        return cls(reader, writer)

    async def post(self, head: bytes, body: bytes) -> int:
        """Send one request; read the whole response; return its status code."""
        self.writer.write(head + b"%d\r\n\r\n" % len(body) + body)
        await self.writer.drain()
        header = await self.reader.readuntil(b"\r\n\r\n")
        status = int(header[9:12])
        for line in header.lower().split(b"\r\n"):
            if line.startswith(b"content-length:"):
                await self.reader.readexactly(int(line.split(b":", 1)[1]))
                return status
        raise RuntimeError(f"response without content-length: {header[:200]!r}")

    def close(self) -> None:
        self.writer.close()


async def _load(
    url: str, bodies: list[dict[str, Any]], concurrency: int, requests: int, warmup: int, pid: int
) -> LoadResult:
    parsed = httpx.URL(url)
    host, port = parsed.host, parsed.port or 80
    head = (
        f"POST {parsed.raw_path.decode()} HTTP/1.1\r\nHost: {host}:{port}\r\n"
        "Content-Type: application/json\r\nContent-Length: "
    ).encode()
    payloads = [json.dumps(b).encode() for b in bodies]
    connections = [await _Connection.open(host, port) for _ in range(concurrency)]
    try:
        for i in range(warmup):
            if await connections[0].post(head, payloads[i % len(payloads)]) != 200:
                raise RuntimeError(f"warm-up request to {url} failed")
        latencies: list[float] = []
        errors = 0
        counter = iter(range(requests))

        async def one_client(connection: _Connection) -> None:
            nonlocal errors
            for i in counter:
                t0 = time.perf_counter()
                status = await connection.post(head, payloads[i % len(payloads)])
                latencies.append(time.perf_counter() - t0)
                errors += status != 200

        cpu0, server0, started = time.process_time(), process_cpu_s(pid), time.perf_counter()
        await asyncio.gather(*(one_client(c) for c in connections))
        seconds, cpu = time.perf_counter() - started, time.process_time() - cpu0
        server_cpu = process_cpu_s(pid) - server0
    finally:
        for connection in connections:
            connection.close()
    summary = summarize(latencies, requests, seconds, server_cpu + cpu)
    return LoadResult(summary, errors, 1000 * cpu / requests)


def closed_loop(
    server: Server,
    path: str,
    bodies: list[dict[str, Any]],
    concurrency: int,
    requests: int,
    warmup: int = 0,
) -> LoadResult:
    """``requests`` POSTs of ``bodies`` (cycled) from ``concurrency`` clients at once; CPU time
    is the server's plus this client's."""
    url = f"{server.base}{path}"
    return asyncio.run(_load(url, bodies, concurrency, requests, warmup, server.pid))
