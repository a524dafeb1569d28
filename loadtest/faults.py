"""Fault suite: a hostile client against a real service on 127.0.0.1 (``make faults``).

``python -m loadtest.faults [--bundles DIR] [--only NAME,...] [--out reports/faults]``

Starts ``python -m service`` with the default bundles and runs each case with a PASS/FAIL line:
bad bodies, exact offsets on random Unicode, a burst with a cross-talk check and Retry-After
against the measured drain, auth (indented comment lines in the key file), the token budget,
short-request latency while a maximal NER request or posture document runs, how soon a model is
free after a 504, a client that disconnects, slow/silent connections and the connection cap,
metric labels under random methods, a flood of over-budget requests, a large head sent at once,
OPTIONS / integral top_k / BOM bodies; then SIGTERM in each state (idle, in flight, past the
graceful timeout with running and queued work, a client mid-body) on fresh processes; then issue
21's cases on fresh processes or scratch bundles: poison batch records and /dev/full, manifests
naming files outside the bundle, INFER_MODELS beside a broken bundle, a corrupt ONNX file,
INFER_PARSE_INTENT_MODEL=nope, 512 non-reading sockets, six clients overloading large requests
(``--only overload_round_robin`` runs that one with round-robin slices, for comparison). Bounded:
fixed counts, every wait has a timeout (a few minutes in all). Exit status 1 on any failure.
The figures go to ``--out``/faults.json. ``--service-root`` runs another checkout's service
(e.g. the code before a fix) with the same cases, for before/after figures.
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import json
import os
import random
import re
import signal
import socket
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from loadtest.server import DEFAULT_BUNDLES, ROOT, Service, free_port, running_service

KEY = "faults-live-key-0123456789"
SHORT = {"text": "tushar se 2 misal mangwao"}
BUDGET = 32_768  # INFER_MAX_REQUEST_TOKENS (default)
# The largest NER request the budget admits: one token per CJK character.
MAXIMAL_NER = {"texts": ["漢" * 20_000, "漢" * (BUDGET - 20_000 - 100)]}
SERVER_ENV = {
    "INFER_REQUEST_TIMEOUT_S": "20",
    "INFER_MAX_QUEUE": "32",
    "INFER_HEADER_TIMEOUT_S": "2",
    "INFER_BODY_TIMEOUT_S": "2",
    "INFER_KEEPALIVE_TIMEOUT_S": "2",
    "INFER_MAX_CONNECTIONS": "200",
    "INFER_MAX_REQUEST_TOKENS": str(BUDGET),
}


class Failed(Exception):
    pass


def check(condition: bool, message: str) -> None:
    if not condition:
        raise Failed(message)


@dataclass
class Context:
    service: Service | None
    bundles: Path
    root: Path
    out: Path
    key_file: Path
    figures: dict[str, Any] = field(default_factory=dict)

    @property
    def base(self) -> str:
        assert self.service is not None
        return self.service.base

    def client(self, timeout: float = 60, **kwargs: Any) -> httpx.Client:
        return httpx.Client(
            base_url=self.base, headers={"X-API-Key": KEY}, timeout=timeout, **kwargs
        )


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def metric(text: str, name: str, **labels: str) -> float:
    """Sum of the samples of ``name`` whose labels include ``labels``."""
    total = 0.0
    for line in text.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        head, _, value = line.rpartition(" ")
        if all(f'{k}="{v}"' in head for k, v in labels.items()):
            total += float(value)
    return total


# --- cases on the main service ------------------------------------------------------------------


def case_probes(ctx: Context) -> str:
    for path in ("/healthz", "/readyz"):
        for method in ("GET", "HEAD"):
            response = httpx.request(method, ctx.base + path, timeout=10)
            check(response.status_code == 200, f"{method} {path}: {response.status_code}")
    return "GET and HEAD on /healthz and /readyz: 200 without a key"


def case_auth(ctx: Context) -> str:
    url = ctx.base + "/v1/entities"
    for headers, expected in (
        ({}, 401),
        ({"X-API-Key": "wrong"}, 401),
        ({"X-API-Key": "#retired-key"}, 401),  # an indented comment line of the key file
        ({"Authorization": "Bearer #retired-key"}, 401),
        ({"Authorization": f"Bearer {KEY}"}, 200),
        ({"X-API-Key": KEY}, 200),
    ):
        response = httpx.post(url, json=SHORT, headers=headers, timeout=30)
        check(response.status_code == expected, f"{headers}: {response.status_code}")
        if expected == 401:
            check(response.json()["error"]["type"] == "unauthorized", response.text)
    return "missing, wrong and commented-out keys 401 JSON; live key 200"


BAD_BODIES: list[tuple[str, bytes, dict[str, str], int, str]] = [
    ("truncated", b'{"text": "a"', {}, 400, "malformed_json"),
    ("empty", b"", {}, 422, "invalid_input"),
    ("nesting 100k", b"[" * 100_000 + b"]" * 100_000, {}, 400, "malformed_json"),
    ("invalid utf-8", b'{"text": "\xff\xfe"}', {}, 400, "malformed_json"),
    ("gzip", gzip.compress(b'{"text": "a"}'), {"content-encoding": "gzip"}, 400, "malformed_json"),
    ("int 5000 digits", b'{"text": "a", "n": ' + b"9" * 5000 + b"}", {}, 400, "malformed_json"),
    (
        "latin-1",
        '{"text": "café"}'.encode("latin-1"),
        {"content-type": "application/json; charset=latin-1"},
        400,
        "malformed_json",
    ),
    ("array", b"[1, 2]", {}, 422, "invalid_input"),
    ("wrong type", b'{"text": 5}', {}, 422, "invalid_input"),
    ("unknown field", b'{"text": "a", "x": 1}', {}, 422, "invalid_input"),
    ("both", b'{"text": "a", "texts": ["b"]}', {}, 422, "invalid_input"),
    ("lone surrogate", b'{"text": "\\ud800"}', {}, 422, "invalid_input"),
    ("65 texts", json.dumps({"texts": ["a"] * 65}).encode(), {}, 422, "limit_exceeded"),
    ("20,001 chars", json.dumps({"text": "a" * 20_001}).encode(), {}, 422, "limit_exceeded"),
    ("3 MB", b"x" * 3_000_000, {}, 413, "payload_too_large"),
    ("unknown model", b'{"text": "a", "model": "../../etc/passwd"}', {}, 404, "model_not_found"),
]


def case_bad_bodies(ctx: Context) -> str:
    with ctx.client() as client:
        for name, content, headers, status, kind in BAD_BODIES:
            response = client.post(
                "/v1/entities",
                content=content,
                headers={"content-type": "application/json", **headers},
            )
            check(response.status_code == status, f"{name}: {response.status_code} {response.text}")
            error = response.json()["error"]
            check(error["type"] == kind, f"{name}: {error}")
        check(client.post("/v1/entities", json=SHORT).status_code == 200, "worker died")
    return f"{len(BAD_BODIES)} bad bodies: each the documented 4xx JSON; the worker serves on"


def random_text(rng: random.Random) -> str:
    blocks = [(0x20, 0x7E), (0x900, 0x97F), (0x4E00, 0x4FFF), (0x600, 0x6FF), (0x1F600, 0x1F64F)]
    pieces = []
    for _ in range(rng.randint(0, 30)):
        lo, hi = rng.choice(blocks)
        word = "".join(chr(rng.randint(lo, hi)) for _ in range(rng.randint(1, 8)))
        pieces.append(word + rng.choice(["", "\u0301", "\u093f"]))
    return rng.choice([" ", "  ", "\t", "\n"]).join([*pieces, "tushar se 2 misal mangwao"])


def case_offsets(ctx: Context) -> str:
    rng = random.Random(9)
    texts = [random_text(rng) for _ in range(200)]
    found = 0
    with ctx.client() as client:
        for i in range(0, len(texts), 8):
            chunk = texts[i : i + 8]
            response = client.post("/v1/entities", json={"texts": chunk})
            check(response.status_code == 200, f"{response.status_code}: {response.text[:200]}")
            for text, result in zip(chunk, response.json()["results"], strict=True):
                for e in result["entities"]:
                    found += 1
                    check(text[e["start"] : e["end"]] == e["text"], f"offsets wrong: {e}")
    return f"200 random Unicode texts: {found} entities, every text[start:end] == entity.text"


def case_burst(ctx: Context) -> str:
    """Concurrent distinct requests: each gets its own answer; 429s carry a Retry-After that
    matches how long the accepted burst took to drain."""
    n = 150
    texts = [f"order {i}: tushar se {i} misal mangwao from shop{i}" for i in range(n)]
    outcomes: list[tuple[int, float, httpx.Response]] = []
    lock = threading.Lock()
    barrier = threading.Barrier(n)

    def one(i: int) -> None:
        with ctx.client() as client:
            barrier.wait(30)
            response = client.post("/v1/entities", json={"texts": [texts[i], "ek misal"]})
            with lock:
                outcomes.append((i, time.monotonic(), response))

    with ThreadPoolExecutor(n) as pool:
        list(pool.map(one, range(n)))
    ok = [(i, t, r) for i, t, r in outcomes if r.status_code == 200]
    refused = [(i, t, r) for i, t, r in outcomes if r.status_code == 429]
    check(len(ok) + len(refused) == n, f"statuses {sorted({r.status_code for *_, r in outcomes})}")
    for i, _, response in ok:
        results = response.json()["results"]
        check(len(results) == 2, f"request {i}: {len(results)} results")
        for entity in results[0]["entities"]:
            check(texts[i][entity["start"] : entity["end"]] == entity["text"], f"cross-talk {i}")
    detail = f"{n} concurrent: {len(ok)} answered (own texts, no cross-talk), {len(refused)} 429"
    if refused:
        first_refusal = min(t for _, t, _ in refused)
        retry = max(int(r.headers["retry-after"]) for *_, r in refused)
        drained = max(t for _, t, _ in ok) - first_refusal
        ctx.figures["burst"] = {"retry_after_s": retry, "drained_s": round(drained, 2)}
        check(retry >= 1, "Retry-After < 1")
        check(retry <= 3 * drained + 2, f"Retry-After {retry} s for a drain of {drained:.2f} s")
        detail += f"; Retry-After {retry} s, queue drained in {drained:.2f} s"
    return detail


def case_token_budget(ctx: Context) -> str:
    with ctx.client() as client:
        over = client.post("/v1/entities", json={"texts": ["漢" * 20_000] * 8})
        check(over.status_code == 422, f"{over.status_code}")
        error = over.json()["error"]
        check(error["field"] == "texts" and error["limit"] == BUDGET, f"{error}")
        single = client.post("/v1/postures", json={"text": "漢 " * 40_000})
        check(single.status_code == 422 and single.json()["error"]["field"] == "text", single.text)
    return f"160k-token NER request and 40k-token document: 422 naming the field, limit {BUDGET}"


@contextmanager
def in_background(ctx: Context, path: str, body: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Run one large request in a thread; the dict gets its status, duration and end time."""
    state: dict[str, Any] = {}

    def run() -> None:
        started = time.monotonic()
        with ctx.client() as client:
            response = client.post(path, json=body)
        state.update(status=response.status_code, seconds=time.monotonic() - started)
        state["ended"] = time.monotonic()

    thread = threading.Thread(target=run)
    thread.start()
    try:
        yield state
    finally:
        thread.join(120)


def figures(values: list[float]) -> dict[str, float]:
    return {
        "n": len(values),
        "p50_ms": round(1000 * statistics.median(values), 1),
        "p95_ms": round(1000 * percentile(values, 0.95), 1),
    }


def timed_short(
    ctx: Context, path: str, body: dict[str, Any], require_ok: bool = True
) -> tuple[float, float, int]:
    started = time.monotonic()
    with ctx.client() as client:
        status = client.post(path, json=body).status_code
    check(status == 200 or not require_ok, f"short request: {status}")
    return started, time.monotonic(), status


def short_requests_during(
    ctx: Context, big: dict[str, Any], limit: int, path: str = "/v1/entities"
) -> tuple[list[float], float | None, list[int]]:
    """Sequential short requests from now until one succeeds after the large request's answer:
    their latencies (and statuses) while it ran, and how long after its answer the model
    answered again."""
    samples: list[tuple[float, float, int]] = []
    while len(samples) < limit:
        samples.append(timed_short(ctx, path, SHORT, require_ok=False))
        if "ended" in big and samples[-1][1] > big["ended"] and samples[-1][2] == 200:
            break
    deadline = time.monotonic() + 120
    while "ended" not in big and time.monotonic() < deadline:
        time.sleep(0.01)
    ended = big.get("ended", float("inf"))
    during = [end - start for start, end, _ in samples if start < ended]
    statuses = [status for start, _, status in samples if start < ended]
    after = [end for _, end, status in samples if end > ended and status == 200]
    return during, (after[0] - ended) if after else None, statuses


def case_maximal_ner(ctx: Context) -> str:
    """Short NER requests stay fast while a maximal one runs; once the maximal request gets its
    answer (504 at the deadline, here 20 s), the model is free again within about one slice."""
    idle = [
        end - start
        for start, end, _ in (timed_short(ctx, "/v1/entities", SHORT) for _ in range(20))
    ]
    with in_background(ctx, "/v1/entities", MAXIMAL_NER) as big:
        time.sleep(1.0)
        during, free, statuses = short_requests_during(ctx, big, 60)
    ctx.figures["ner_idle"] = figures(idle)
    ctx.figures["ner_during_maximal_ner"] = figures(during) if during else None
    ctx.figures["maximal_ner"] = {"status": big["status"], "seconds": round(big["seconds"], 2)}
    ctx.figures["free_after_answer_s"] = None if free is None else round(free, 3)
    ctx.figures["ner_during_maximal_ner_statuses"] = statuses
    check(big["status"] in (200, 504), f"maximal request: {big['status']}")
    check(set(statuses) == {200}, f"short requests during it: {statuses}")
    check(bool(during), "no short request started while the maximal one ran")
    p95 = percentile(during, 0.95)
    check(p95 < 0.25 * big["seconds"], f"short p95 {p95:.2f} s vs {big['seconds']:.1f} s job")
    check(free is not None and free < 3.0, f"model busy {free} s after the maximal answer")
    return (
        f"short NER idle p50/p95 {ctx.figures['ner_idle']['p50_ms']}/"
        f"{ctx.figures['ner_idle']['p95_ms']} ms; during a maximal NER request "
        f"({big['status']} after {big['seconds']:.1f} s) {figures(during)['p50_ms']}/"
        f"{figures(during)['p95_ms']} ms; model answering again {free:.2f} s after its answer"
    )


def maximal_document() -> str:
    from default_models.legal_corpus import generate_splits

    docs = [d.text for d in generate_splits(n_train=1, n_validation=1, n_test=60)["test"]]
    text = ""
    for doc in docs:
        if len(text) + len(doc) + 2 > 100_000:
            break
        text += doc + "\n\n"
    return text


def case_maximal_posture(ctx: Context) -> str:
    """Short NER and posture requests while a maximal posture document runs."""
    document = maximal_document()
    with ctx.client() as client:
        short_doc = {"text": document[:2000]}
        check(client.post("/v1/postures", json=short_doc).status_code == 200, "short document")
    with in_background(ctx, "/v1/postures", {"text": document}) as big:
        time.sleep(0.5)
        ner, _, statuses = short_requests_during(ctx, big, 40)
    with in_background(ctx, "/v1/postures", {"text": document}) as big:
        time.sleep(0.5)
        postures: list[float] = []
        while "ended" not in big and len(postures) < 10:
            started, ended, _ = timed_short(ctx, "/v1/postures", short_doc)
            postures.append(ended - started)
    ctx.figures["ner_during_maximal_posture"] = figures(ner) if ner else None
    ctx.figures["ner_during_maximal_posture_statuses"] = statuses
    ctx.figures["posture_short_during_maximal_posture"] = figures(postures) if postures else None
    ctx.figures["maximal_posture"] = {
        "status": big["status"],
        "seconds": round(big["seconds"], 2),
        "chars": len(document),
    }
    check(big["status"] in (200, 504), f"maximal document: {big['status']}")
    check(set(statuses) <= {200}, f"short NER requests during it: {statuses}")
    if ner:
        check(percentile(ner, 0.95) < 0.5 * big["seconds"] + 0.5, "NER held up by postures")
    return (
        f"{len(document):,}-character document: {big['status']} after {big['seconds']:.1f} s; "
        f"short NER meanwhile {ctx.figures['ner_during_maximal_posture']}, short documents "
        f"{ctx.figures['posture_short_during_maximal_posture']}"
    )


def case_disconnect(ctx: Context) -> str:
    """A client that leaves mid-request: recorded as 499, its work cancelled, the model free."""
    with ctx.client() as client:
        before = client.get("/metrics").text
    body = json.dumps(MAXIMAL_NER).encode()
    host, port = ctx.base.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=10)
    sock.sendall(
        b"POST /v1/entities HTTP/1.1\r\nHost: x\r\ncontent-type: application/json\r\n"
        + f"x-api-key: {KEY}\r\ncontent-length: {len(body)}\r\n\r\n".encode()
        + body
    )
    time.sleep(1.5)
    sock.close()
    left = time.monotonic()
    started, ended, _ = timed_short(ctx, "/v1/entities", SHORT)
    free = ended - started
    time.sleep(0.5)
    with ctx.client() as client:
        after = client.get("/metrics").text
    gone = metric(after, "infer_request_duration_seconds_count", status="499")
    gone -= metric(before, "infer_request_duration_seconds_count", status="499")
    cancelled = {
        unit: metric(after, "infer_cancelled_total", model="ner-food", unit=unit)
        - metric(before, "infer_cancelled_total", model="ner-food", unit=unit)
        for unit in ("requests", "windows", "onnx_calls")
    }
    ctx.figures["disconnect"] = {"free_after_s": round(free, 3), "cancelled": cancelled}
    check(gone == 1, f"499 recorded {gone} times")
    check(cancelled["requests"] >= 1 and cancelled["windows"] > 0, f"cancelled {cancelled}")
    check(free < 3.0, f"model busy {free:.2f} s after the client left")
    return (
        f"recorded as 499; cancelled {cancelled}; next request answered "
        f"{time.monotonic() - left:.2f} s after the client left"
    )


def read_until_closed(sock: socket.socket, limit_s: float) -> tuple[bytes, float]:
    started = time.monotonic()
    sock.settimeout(limit_s)
    data = b""
    try:
        while chunk := sock.recv(65536):
            data += chunk
    except (TimeoutError, ConnectionResetError):
        pass
    return data, time.monotonic() - started


def case_connections(ctx: Context) -> str:
    host, port = ctx.base.removeprefix("http://").split(":")

    def connect() -> socket.socket:
        return socket.create_connection((host, int(port)), timeout=10)

    silent = [connect() for _ in range(40)]
    slow = connect()
    slow.sendall(
        b"POST /v1/entities HTTP/1.1\r\nHost: x\r\ncontent-length: 50\r\n"
        + f"x-api-key: {KEY}\r\n\r\n{{".encode()
    )
    closed = [read_until_closed(s, 8)[1] for s in silent]
    check(max(closed) < 6, f"a silent connection stayed open {max(closed):.1f} s")
    answer, _ = read_until_closed(slow, 8)
    check(answer.startswith(b"HTTP/1.1 408"), f"slow body: {answer[:80]!r}")
    for s in [*silent, slow]:
        s.close()
    time.sleep(0.5)
    held = [connect() for _ in range(200)]
    try:
        time.sleep(0.3)
        refused = httpx.get(ctx.base + "/healthz", timeout=10)
        check(refused.status_code == 503, f"over the cap: {refused.status_code}")
        check(refused.json()["error"]["type"] == "too_many_connections", refused.text)
    finally:
        for s in held:
            s.close()
    time.sleep(0.5)
    check(httpx.get(ctx.base + "/healthz", timeout=10).status_code == 200, "no recovery")
    return (
        f"40 silent sockets closed after {max(closed):.1f} s at most; a stalled body 408; "
        "connection 201 got 503 too_many_connections, then 200"
    )


def case_metric_labels(ctx: Context) -> str:
    with ctx.client() as client:
        size_before = len(client.get("/metrics").content)
    rng = random.Random(4)
    letters = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"

    requests = [
        (
            "".join(rng.choice(letters) for _ in range(10)),
            rng.choice(["/v1/entities", "/healthz", f"/nowhere/{i}"]),
        )
        for i in range(1000)
    ]
    with ctx.client() as client:

        def one(request: tuple[str, str]) -> None:
            with contextlib.suppress(httpx.TransportError):  # an odd method may close the socket
                client.request(*request)

        with ThreadPoolExecutor(8) as pool:
            list(pool.map(one, requests))
    with ctx.client() as client:
        text = client.get("/metrics").text
    methods = {
        line.split('method="')[1].split('"')[0]
        for line in text.splitlines()
        if line.startswith("infer_request_duration_seconds_count{")
    }
    size = len(text.encode())
    ctx.figures["metrics_bytes"] = {"before": size_before, "after_1000_random_methods": size}
    ctx.figures["metrics_bytes"]["method_label_values"] = len(methods)
    allowed = {"GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "other"}
    check(methods <= allowed, f"{len(methods)} method label values, e.g. {sorted(methods)[:5]}")
    check(size - size_before < 50_000, f"/metrics grew {size - size_before} bytes")
    grown = f"/metrics {size_before} → {size} bytes"
    return f"1,000 random methods: method labels {sorted(methods)[:10]}; {grown}"


def case_alive(ctx: Context) -> str:
    with ctx.client() as client:
        check(client.get("/readyz").status_code == 200, "not ready")
        check(client.post("/v1/entities", json=SHORT).status_code == 200, "NER")
    return "after every case: ready, and NER answers"


# --- hard to break, part 2 (issue 21) -------------------------------------------------------------

# 64 texts x 20,000 characters (1.28 MB, ~350k tokens): far over the token budget, refused 422.
OVER_BUDGET = {"texts": ["tushar se 2 misal mangwao aur pizza " * 555] * 64}


def load_target(models: dict[str, str]) -> tuple[str, str, dict[str, Any]]:
    """The model the load cases use: ner-food on /v1/entities, else the intent classifier on
    /v1/classify (when the NER bundle is not built): (name, route, short request)."""
    if "ner-food" in models:
        return "ner-food", "/v1/entities", SHORT
    name = next(n for n, task in models.items() if task == "classify")
    return name, "/v1/classify", {"text": "where is my order?", "model": name}


def case_flood_refused(ctx: Context) -> str:
    """Issue 21.1: two clients loop over-budget requests (422 each) for 10 s; short NER requests
    meanwhile must stay fast (p99 <= 1 s): a refused request never delays admitted work."""
    stop = threading.Event()
    refused: list[int] = []
    assert ctx.service is not None
    name, route, short = load_target(ctx.service.models)

    def flood() -> None:
        with ctx.client(timeout=120) as client:
            while not stop.is_set():
                body = {**OVER_BUDGET, "model": name}
                refused.append(client.post(route, json=body).status_code)

    threads = [threading.Thread(target=flood) for _ in range(2)]
    for thread in threads:
        thread.start()
    latencies: list[float] = []
    statuses: list[int] = []
    try:
        time.sleep(1.0)
        ends = time.monotonic() + 10
        while time.monotonic() < ends:
            started, ended, status = timed_short(ctx, route, short, require_ok=False)
            latencies.append(ended - started)
            statuses.append(status)
    finally:
        stop.set()
        for thread in threads:
            thread.join(120)
    p99 = percentile(latencies, 0.99)
    ctx.figures["flood_refused"] = {
        **figures(latencies),
        "p99_ms": round(1000 * p99, 1),
        "max_ms": round(1000 * max(latencies), 1),
        "over_budget_answers": {str(s): refused.count(s) for s in sorted(set(refused))},
        "model": name,
    }
    check(bool(refused), "no over-budget request was answered during the flood")
    check(set(refused) <= {422, 429}, f"over-budget requests answered {sorted(set(refused))}")
    check(set(statuses) == {200}, f"short requests: {sorted(set(statuses))}")
    check(p99 <= 1.0, f"short NER p99 {p99:.2f} s during the flood (limit 1 s)")
    return (
        f"{len(refused)} over-budget requests refused "
        f"({ctx.figures['flood_refused']['over_budget_answers']}); "
        f"{len(latencies)} short {name} requests meanwhile: p50 {figures(latencies)['p50_ms']} ms, "
        f"p99 {1000 * p99:.0f} ms, max {1000 * max(latencies):.0f} ms"
    )


def case_head_at_once(ctx: Context) -> str:
    """Issue 21.7: a 100 KB request head sent in one piece gets 400, like one sent in pieces."""
    host, port = ctx.base.removeprefix("http://").split(":")
    answers = []
    for size in (100_000, 17_000):
        sock = socket.create_connection((host, int(port)), timeout=10)
        head = f"GET /healthz HTTP/1.1\r\nHost: x\r\nx-pad: {'a' * size}\r\n\r\n".encode()
        sock.sendall(head)
        answer, _ = read_until_closed(sock, 5)
        sock.close()
        answers.append(answer[:12].decode(errors="replace"))
        check(answer.startswith(b"HTTP/1.1 400"), f"{size:,}-byte head at once: {answer[:80]!r}")
        check(b"application/json" in answer.lower(), "the 400 is not JSON")
    ok = httpx.get(ctx.base + "/healthz", headers={"x-pad": "a" * 8000}, timeout=10)
    check(ok.status_code == 200, f"an 8 KB head: {ok.status_code}")
    return "100 KB and 17 KB heads sent at once: 400 JSON; an 8 KB head: 200"


def case_small_api(ctx: Context) -> str:
    """Issue 21.7: OPTIONS names GET and HEAD; top_k 1.0 (a JSON Schema integer) is accepted;
    UTF-8 BOM and UTF-16 bodies are 400."""
    allows = {}
    for path in ("/healthz", "/readyz"):
        response = httpx.options(ctx.base + path, timeout=10)
        allows[path] = response.headers.get("allow", "")
        methods = {m.strip() for m in allows[path].split(",")}
        check(response.status_code == 405, f"OPTIONS {path}: {response.status_code}")
        check({"GET", "HEAD"} <= methods, f"OPTIONS {path}: Allow {allows[path]!r}")
    body = {"text": "where is my order?", "top_k": 1.0, "model": "intent-food"}
    with ctx.client() as client:
        ranked = client.post("/v1/classify", json=body)
        check(ranked.status_code == 200, f"top_k 1.0: {ranked.status_code} {ranked.text[:200]}")
        half = client.post("/v1/classify", json={**body, "top_k": 1.5})
        check(half.status_code == 422, f"top_k 1.5: {half.status_code}")
        for name, raw in (
            ("utf-8 bom", b"\xef\xbb\xbf" + json.dumps(SHORT).encode()),
            ("utf-16", json.dumps(SHORT).encode("utf-16")),
            ("utf-16-le", json.dumps(SHORT).encode("utf-16-le")),
        ):
            response = client.post(
                "/v1/entities", content=raw, headers={"content-type": "application/json"}
            )
            check(response.status_code == 400, f"{name}: {response.status_code}")
            check(response.json()["error"]["type"] == "malformed_json", f"{name}: {response.text}")
    return f"Allow {allows}; top_k 1.0 200, 1.5 422; BOM and UTF-16 bodies 400 malformed_json"


def non_reading_sockets(ctx: Context, count: int) -> list[socket.socket]:
    """``count`` sockets with a 4 KB receive buffer, each pipelining enough /openapi.json
    requests for 6 MB of answers (more than the kernel's 4 MB send buffer, so the server's
    writes stall) and never reading an answer; opened 64 at a time."""
    host, port = ctx.base.removeprefix("http://").split(":")
    size = len(httpx.get(ctx.base + "/openapi.json", timeout=10).content)
    request = f"GET /openapi.json HTTP/1.1\r\nHost: x\r\nx-api-key: {KEY}\r\n\r\n".encode()

    def one(_: int) -> socket.socket:
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.settimeout(10)
        sock.connect((host, int(port)))
        sock.settimeout(0.5)
        # What the server does not take now (it reads pipelined requests one at a time) stays
        # unsent; an aborted connection (the fix) resets the send.
        with contextlib.suppress(TimeoutError, OSError):
            sock.sendall(request * (6_000_000 // size + 1))
        return sock

    with ThreadPoolExecutor(64) as pool:
        return list(pool.map(one, range(count)))


def case_non_reading(ctx: Context) -> str:
    """Issue 21.4 as reported: 512 clients (``FAULTS_NON_READING``) at the default connection
    cap (512) and write timeout (30 s) pipeline requests and never read their answers; a normal
    client must be served within a few seconds: a new connection evicts the stalled one."""
    count = int(os.environ.get("FAULTS_NON_READING", "512"))
    with fresh(ctx, "non-reading", INFER_MODELS='["intent-food"]') as service:
        ctx.service = service
        held = non_reading_sockets(ctx, count)
        try:
            opened = time.monotonic()
            first_ok: float | None = None
            statuses: list[int] = []
            while time.monotonic() - opened < 20:
                try:
                    status = httpx.get(
                        service.base + "/v1/models", headers={"X-API-Key": KEY}, timeout=5
                    ).status_code
                except httpx.TransportError:
                    status = 0
                statuses.append(status)
                if status == 200:
                    first_ok = time.monotonic() - opened
                    break
                time.sleep(0.25)
        finally:
            for sock in held:
                sock.close()
    ctx.figures["non_reading"] = {
        "sockets": count,
        "connection_cap": 512,
        "write_timeout_s": 30,
        "first_200_after_s": None if first_ok is None else round(first_ok, 2),
        "statuses_before": sorted(set(statuses)),
    }
    check(
        first_ok is not None, f"no 200 in 20 s beside {count} non-reading sockets: {statuses[-3:]}"
    )
    # quiet 2-core host: 2.3-2.7 s (the server must first fill 512 send buffers before any
    # connection counts as stalled); 6-12 s while other jobs share the cores
    check(first_ok is not None and first_ok <= 10.0, f"first 200 after {first_ok} s")
    return f"{count} non-reading sockets (cap 512): a normal client served after {first_ok:.1f} s"


def overload(ctx: Context, order: str) -> str:
    """Issue 21.2, scaled: six clients loop a large NER request sized to take deadline / 2.3
    alone (the issue's 10.9 s against 25 s), for 2.2 deadlines (its 55 s): at least 70 % of the
    requests one after another could finish must be answered, and every refusal must come within
    1 s (shed early, with Retry-After)."""
    deadline = 20.0
    models = available_models(ctx.bundles)
    name, route, _ = load_target(models)
    env = {
        "INFER_MODELS": json.dumps([name]),
        "INFER_REQUEST_TIMEOUT_S": str(deadline),
        "INFER_LARGE_REQUEST_ORDER": order,
    }
    with fresh(ctx, f"overload-{order}", **env) as service:
        ctx.service = service
        probe = {"texts": ["漢" * 2000] * 3, "model": name}
        with ctx.client() as client:
            client.post(route, json={"texts": ["漢" * 2000], "model": name})  # warm slicing
            started = time.monotonic()
            check(client.post(route, json=probe).status_code == 200, "probe request")
            per_text = (time.monotonic() - started) / 3
        texts = max(1, min(16, round(deadline / 2.3 / per_text)))
        body = {"texts": ["漢" * 2000] * texts, "model": name}
        alone = per_text * texts
        window = 2.2 * deadline
        outcomes: list[tuple[int, float, str | None]] = []
        lock = threading.Lock()
        ends = time.monotonic() + window

        def client_loop() -> None:
            with ctx.client(timeout=deadline + 30) as client:
                while time.monotonic() < ends:
                    started = time.monotonic()
                    try:
                        response = client.post(route, json=body)
                    except httpx.TransportError:
                        # a keep-alive connection the server closed while idle (Retry-After
                        # sleeps can outlast the keep-alive timeout): reconnect and go on
                        continue
                    with lock:
                        outcomes.append(
                            (
                                response.status_code,
                                time.monotonic() - started,
                                response.headers.get("retry-after"),
                            )
                        )
                    if response.status_code == 429:
                        retry = float(response.headers.get("retry-after", "1"))
                        time.sleep(min(retry, max(0.0, ends - time.monotonic())))

        threads = [threading.Thread(target=client_loop) for _ in range(6)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(window + deadline + 60)
    answered = [s for s, _, _ in outcomes if s == 200]
    shed = [t for s, t, _ in outcomes if s in (429, 503)]
    expired = [t for s, t, _ in outcomes if s == 504]
    possible = window / alone
    figure = {
        "order": order,
        "model": name,
        "texts": texts,
        "alone_s": round(alone, 2),
        "deadline_s": deadline,
        "window_s": round(window, 1),
        "answered": len(answered),
        "possible_one_by_one": round(possible, 1),
        "shed": len(shed),
        "shed_max_s": round(max(shed), 2) if shed else None,
        "expired_504": len(expired),
        "statuses": sorted({s for s, _, _ in outcomes}),
    }
    ctx.figures[f"overload_{order}"] = figure
    check(len(answered) >= int(0.7 * possible), f"{figure}")
    check(not shed or max(shed) <= 1.0, f"a refusal took {max(shed):.2f} s")
    check(len(expired) <= 1, f"{len(expired)} requests expired (504) instead of being shed")
    return (
        f"{texts} x 2,000-token texts ({alone:.1f} s alone), deadline {deadline:g} s, six clients "
        f"for {window:.0f} s ({order}): {len(answered)} answered of {possible:.1f} possible, "
        f"{len(shed)} shed (slowest {figure['shed_max_s']} s), {len(expired)} x 504"
    )


def available_models(bundles: Path) -> dict[str, str]:
    """name -> task of the bundles in ``bundles`` (their manifests)."""
    found = {}
    for manifest in sorted(bundles.glob("*/bundle.json")):
        with contextlib.suppress(ValueError, KeyError):
            data = json.loads(manifest.read_text())
            found[data["name"]] = data["task"]
    return found


def case_overload(ctx: Context) -> str:
    return overload(ctx, "deadline")


def case_overload_round_robin(ctx: Context) -> str:
    return overload(ctx, "round-robin")


# The bundle the file-level cases copy (paths, INFER_MODELS, a corrupt ONNX file, poison records).
FILE_BUNDLE = "intent-food"


def batch_scorer(ctx: Context, *args: str, limit_s: float = 120) -> tuple[int | None, str, float]:
    """``python -m service.batch`` of the served checkout; memory capped (a runaway read)."""
    import resource
    import subprocess

    def cap() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (6 << 30, 6 << 30))

    started = time.monotonic()
    command = [sys.executable, "-m", "service.batch", "--bundles", str(ctx.bundles), *args]
    try:
        done = subprocess.run(
            command, cwd=ctx.root, capture_output=True, timeout=limit_s, preexec_fn=cap
        )
    except subprocess.TimeoutExpired as exc:
        return None, (exc.stderr or b"").decode(errors="replace"), time.monotonic() - started
    return done.returncode, done.stderr.decode(errors="replace"), time.monotonic() - started


def case_poison_record(ctx: Context) -> str:
    """Issue 21.3 and 21.7: a lone surrogate / NaN / 1e400 in a record goes to the error file
    with its line and reason and every other record is scored; --output /dev/full is a clear
    error exit, not an endless read."""
    work = Path(tempfile.mkdtemp(prefix="faults-poison-"))
    good = [{"id": f"doc-{i}", "text": f"tushar se {i} misal mangwao"} for i in range(20)]
    poison = [
        '{"id": "\\ud800", "text": "x"}',
        '{"id": "p2", "text": "x", "extra": NaN}',
        '{"id": "p3", "text": "x", "big": 1e400}',
    ]
    lines = [json.dumps(r) for r in good[:10]] + poison + [json.dumps(r) for r in good[10:]]
    data = work / "in.jsonl"
    data.write_text("".join(line + "\n" for line in lines))
    out = work / "out.jsonl"
    common = ["--model", FILE_BUNDLE, "--input", str(data), "--no-progress"]
    code, log, _ = batch_scorer(ctx, *common, "--output", str(out))
    written = [json.loads(x) for x in out.read_text().splitlines()] if out.exists() else []
    error_file = work / "out.jsonl.errors.jsonl"
    errors = (
        [json.loads(x) for x in error_file.read_text().splitlines()] if error_file.exists() else []
    )
    full_code, full_log, full_s = batch_scorer(ctx, *common, "--output", "/dev/full", limit_s=60)
    ctx.figures["poison_record"] = {
        "exit": code,
        "scored": len(written),
        "of_good": len(good),
        "error_lines": sorted(e.get("line") for e in errors),
        "dev_full": {"exit": full_code, "seconds": round(full_s, 1)},
    }
    check(code == 1, f"exit {code}: {log[-300:]}")
    check(len(written) == len(good), f"{len(written)} of {len(good)} good records scored")
    check(sorted(e["line"] for e in errors) == [11, 12, 13], f"errors {errors}")
    check(all(e.get("reason") for e in errors), f"errors without a reason: {errors}")
    check(full_code == 2 and full_s < 60, f"/dev/full: exit {full_code} after {full_s:.0f} s")
    check("/dev/full" in full_log, f"/dev/full: message {full_log[-200:]!r}")
    return (
        f"exit 1; {len(written)}/{len(good)} good records scored, error lines "
        f"{sorted(e['line'] for e in errors)}; --output /dev/full: exit {full_code} after "
        f"{full_s:.1f} s"
    )


def start_outcome(
    ctx: Context, bundles: Path, name: str, env: dict[str, str], limit_s: float = 90
) -> tuple[str, str]:
    """Start ``python -m service`` on ``bundles``: ("exit N", log) or ("ready", log) or
    ("unready", log) when neither happened within ``limit_s``."""
    import os
    import subprocess

    log_path = ctx.out / f"service-{name}.log"
    port = free_port()
    environ = {
        **os.environ,
        **SERVER_ENV,
        "INFER_BUNDLES_DIR": str(bundles),
        "INFER_PORT": str(port),
        "INFER_HOST": "127.0.0.1",
        "INFER_LOG_LEVEL": "info",
        "INFER_LOG_FORMAT": "text",
        **env,
    }
    with log_path.open("wb") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "service"], env=environ, cwd=ctx.root, stdout=sink, stderr=sink
        )
    outcome = "unready"
    ends = time.monotonic() + limit_s
    try:
        while time.monotonic() < ends:
            if process.poll() is not None:
                outcome = f"exit {process.returncode}"
                break
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=2).status_code == 200:
                    outcome = "ready"
                    break
            time.sleep(0.3)
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(30)
            except Exception:
                process.kill()
                process.wait()
    return outcome, log_path.read_text(errors="replace")


def bundle_copy(source: Path, target: Path, onnx: Path, **changes: Any) -> None:
    """A bundle in ``target``: ``source``'s manifest (with ``changes`` to its onnx/tokenizer
    sections and name) and files, its ONNX file hard-linked from ``onnx``."""
    import os
    import shutil

    target.mkdir(parents=True)
    manifest = json.loads((source / "bundle.json").read_text())
    for key, value in changes.items():
        section, _, field_name = key.partition("__")
        if field_name:
            manifest[section][field_name] = value
        else:
            manifest[section] = value
    (target / "bundle.json").write_text(json.dumps(manifest))
    for item in source.iterdir():
        if item.name in ("bundle.json", manifest_file(source)):
            continue
        if item.is_file():
            shutil.copy(item, target / item.name)
    os.link(onnx, target / manifest_file(source))


def manifest_file(source: Path) -> str:
    return str(json.loads((source / "bundle.json").read_text())["onnx"]["file"])


@contextmanager
def bundle_workspace() -> Iterator[tuple[Path, Path]]:
    """A scratch directory and, inside it, one copy of an ONNX file outside any bundle."""
    import shutil

    with tempfile.TemporaryDirectory(prefix="faults-bundles-") as tmp:
        root = Path(tmp)
        (root / "outside").mkdir()
        onnx = root / "outside" / "model.onnx"
        yield root, onnx
        shutil.rmtree(root, ignore_errors=True)


def case_bundle_paths(ctx: Context) -> str:
    """Issue 21.5: manifests naming files outside the bundle (``..``, absolute, a symlink out,
    /etc/passwd as tokenizer) are refused at start-up with the path named, and no message shows
    the hash of a file outside the bundle."""
    import hashlib
    import shutil

    source = ctx.bundles / FILE_BUNDLE
    passwd_hash = hashlib.sha256(Path("/etc/passwd").read_bytes()).hexdigest()
    results = {}
    with bundle_workspace() as (root, onnx):
        shutil.copy(source / manifest_file(source), onnx)
        variants = {
            "dotdot": ({"onnx__file": "../../outside/model.onnx"}, "../../outside/model.onnx"),
            "absolute": ({"onnx__file": str(onnx)}, str(onnx)),
            "passwd": ({"tokenizer__file": "/etc/passwd"}, "/etc/passwd"),
            "symlink": ({}, "model.onnx"),
        }
        for name, (changes, shown) in variants.items():
            bundles = root / name
            bundle_copy(source, bundles / FILE_BUNDLE, onnx, **changes)
            if name == "symlink":
                target = bundles / FILE_BUNDLE / manifest_file(source)
                target.unlink()
                target.symlink_to(onnx)
                shown = manifest_file(source)
            outcome, log = start_outcome(ctx, bundles, f"paths-{name}", {}, limit_s=90)
            results[name] = outcome
            if shown not in log:
                results[name] += ", path not named"
            if passwd_hash in log:
                results[name] += ", /etc/passwd's sha256 shown"
    ctx.figures["bundle_paths"] = results
    for name, outcome in results.items():
        check(outcome.startswith("exit") and outcome != "exit 0", f"{name}: {outcome}")
        check("," not in outcome, f"{name}: {outcome}")
    return f"outside-path manifests refused at start-up, path named: {results}"


def case_models_isolation(ctx: Context) -> str:
    """Issue 21.6: a broken bundle that INFER_MODELS leaves out does not stop start-up."""
    import shutil

    source = ctx.bundles / FILE_BUNDLE
    with bundle_workspace() as (root, onnx):
        shutil.copy(source / manifest_file(source), onnx)
        bundles = root / "bundles"
        bundle_copy(source, bundles / FILE_BUNDLE, onnx)
        (bundles / "broken").mkdir()
        (bundles / "broken" / "bundle.json").write_text("{not json")
        env = {"INFER_MODELS": json.dumps([FILE_BUNDLE])}
        outcome, _ = start_outcome(ctx, bundles, "isolation", env)
    ctx.figures["models_isolation"] = outcome
    check(outcome == "ready", f"INFER_MODELS=[{FILE_BUNDLE}] beside a broken bundle: {outcome}")
    return f"INFER_MODELS=[{FILE_BUNDLE}] beside a broken bundle: ready"


def case_broken_bundle(ctx: Context) -> str:
    """Issue 21.7: a bundle whose ONNX file is garbage with a matching hash passes verification
    and fails to load: the policy is exit 3 with the bundle named (not /readyz 503 forever)."""
    import hashlib
    import shutil

    source = ctx.bundles / FILE_BUNDLE
    with bundle_workspace() as (root, onnx):
        shutil.copy(source / manifest_file(source), onnx)
        bundles = root / "bundles"
        bundle_copy(source, bundles / FILE_BUNDLE, onnx)
        garbage = root / "outside" / "garbage.onnx"
        garbage.write_bytes(b"not an onnx graph" * 100)
        digest = hashlib.sha256(garbage.read_bytes()).hexdigest()
        bundle_copy(
            source,
            bundles / "corrupt",
            garbage,
            name="corrupt-bundle",
            onnx__sha256=digest,
        )
        outcome, log = start_outcome(ctx, bundles, "broken-bundle", {}, limit_s=60)
    ctx.figures["broken_bundle"] = outcome
    check(outcome == "exit 3", f"a corrupt ONNX with a matching hash: {outcome}")
    check("corrupt" in log, "the log does not name the broken bundle")
    return f"a corrupt ONNX file with a matching hash: {outcome}, the bundle named in the log"


def case_parse_setting(ctx: Context) -> str:
    """Issue 21.7: INFER_PARSE_INTENT_MODEL=nope is a start-up error, not 404 on every parse."""
    env = {"INFER_PARSE_INTENT_MODEL": "nope"}
    outcome, log = start_outcome(ctx, ctx.bundles, "parse-setting", env, limit_s=120)
    ctx.figures["parse_setting"] = outcome
    check(
        outcome.startswith("exit") and outcome != "exit 0",
        f"INFER_PARSE_INTENT_MODEL=nope: {outcome}",
    )
    check("INFER_PARSE_INTENT_MODEL" in log, "the log does not name the setting")
    return f"INFER_PARSE_INTENT_MODEL=nope: {outcome}, the setting named"


def case_redact(ctx: Context) -> str:
    """/v1/redact refuses bad options and oversized input before any inference (422 naming the
    field), and a good request leaves no answered entity's text in the redacted text."""
    huge = "漢" * (BUDGET + 1_000)  # one token per CJK character: over the request budget
    refusals = [
        ("bad mode", {**SHORT, "mode": "shred"}, "mode"),
        ("hash without a key", {**SHORT, "mode": "hash"}, "mode"),  # no INFER_REDACT_HASH_KEY
        ("unknown label", {**SHORT, "labels": ["NOPE"]}, "labels"),
        ("huge text", {"text": huge}, "text"),
        ("one window only", {"text": "tushar se misal " * 400, "truncation": "error"}, "text"),
    ]
    with ctx.client() as client:
        for name, body, field_name in refusals:
            response = client.post("/v1/redact", json=body)
            check(response.status_code == 422, f"{name}: {response.status_code} {response.text}")
            error = response.json()["error"]
            check(error.get("field") == field_name, f"{name}: {error}")
        texts = [f"tushar se {i} misal aur pizza mangwao, tushar ko bolo" for i in range(8)]
        answer = client.post("/v1/redact", json={"texts": texts, "mode": "placeholder"})
        check(answer.status_code == 200, f"{answer.status_code}: {answer.text[:200]}")
        spans = 0
        for text, result in zip(texts, answer.json()["results"], strict=True):
            # Replaced by position: between the spans the redacted text is the original's, and
            # each span's place holds a placeholder, never its own text.
            rebuilt, at = "", 0
            for span in result["spans"]:
                spans += 1
                placed = result["text"][span["redacted_start"] : span["redacted_end"]]
                check(re.fullmatch(rf"<{span['label']}_\d+>", placed) is not None, f"{placed!r}")
                rebuilt += text[at : span["start"]] + placed
                at = span["end"]
            check(rebuilt + text[at:] == result["text"], f"not replaced by position: {result}")
        check(client.post("/v1/entities", json=SHORT).status_code == 200, "worker died")
    return (
        f"{len(refusals)} bad /v1/redact bodies (bad mode, hash without key, unknown label, "
        f"{len(huge)}-token text, truncation error): 422 naming the field; 8 texts redacted, "
        f"{spans} spans, each replaced in place"
    )


MAIN_CASES: list[tuple[str, Callable[[Context], str]]] = [
    ("probes", case_probes),
    ("auth", case_auth),
    ("bad_bodies", case_bad_bodies),
    ("offsets", case_offsets),
    ("token_budget", case_token_budget),
    ("burst", case_burst),
    ("maximal_ner", case_maximal_ner),
    ("maximal_posture", case_maximal_posture),
    ("disconnect", case_disconnect),
    ("connections", case_connections),
    ("metric_labels", case_metric_labels),
    ("flood_refused", case_flood_refused),
    ("head_at_once", case_head_at_once),
    ("small_api", case_small_api),
    ("redact", case_redact),
    ("alive", case_alive),
]


# --- SIGTERM, each on a fresh process -----------------------------------------------------------


@contextmanager
def fresh(ctx: Context, name: str, **env: str) -> Iterator[Service]:
    log = ctx.out / f"service-{name}.log"
    env = {**SERVER_ENV, **env}
    keyed = {"X-API-Key": KEY}
    with running_service(ctx.bundles, log, env, root=ctx.root, headers=keyed) as service:
        yield service


def sigterm(service: Service, limit_s: float) -> tuple[int | None, float]:
    started = time.monotonic()
    service.process.send_signal(signal.SIGTERM)
    try:
        code = service.process.wait(timeout=limit_s)
    except Exception:
        return None, time.monotonic() - started
    return code, time.monotonic() - started


def record_exit(ctx: Context, state: str, code: int | None, seconds: float) -> None:
    ctx.figures.setdefault("sigterm", {})[state] = {"exit": code, "seconds": round(seconds, 2)}


def case_sigterm_idle(ctx: Context) -> str:
    with fresh(ctx, "idle") as service:
        code, seconds = sigterm(service, 30)
    record_exit(ctx, "idle", code, seconds)
    check(code == 0, f"exit status {code}")
    return f"exit {code} after {seconds:.1f} s"


def case_sigterm_in_flight(ctx: Context) -> str:
    """A request inside ONNX Runtime at SIGTERM, graceful timeout long enough: it finishes."""
    body = {"texts": ["tushar se 2 misal mangwao aur inayat cafe se pizza " * 100] * 4}
    env = {"INFER_GRACEFUL_TIMEOUT_SECONDS": "60", "INFER_REQUEST_TIMEOUT_S": "60"}
    with fresh(ctx, "in-flight", **env) as service:
        ctx.service = service
        with in_background(ctx, "/v1/entities", body) as request:
            time.sleep(0.3)
            code, seconds = sigterm(service, 90)
    record_exit(ctx, "in_flight", code, seconds)
    check(request.get("status") == 200, f"in-flight request: {request.get('status')}")
    check(code == 0, f"exit status {code}")
    return f"in-flight request 200, exit {code} after {seconds:.1f} s"


def answer_kind(response: httpx.Response) -> str:
    """ "ok" for a 200 with results, the error type for a JSON error, else what it was."""
    try:
        body = response.json()
    except ValueError:
        return f"not JSON ({response.headers.get('content-type')})"
    if response.status_code == 200 and isinstance(body.get("results"), list):
        return "ok"
    return str(body.get("error", {}).get("type"))


def case_sigterm_past_graceful(ctx: Context) -> str:
    """Maximal requests running and queued, graceful timeout 2 s: each gets complete JSON (its
    result if it finished in time, else 503 draining; at least the queued ones), exit 0."""
    answers: list[httpx.Response] = []
    # About shutdown, not admission: all three are admitted (no shedding by deadline, and room
    # for their ~44k window tokens each under the queued-work cap).
    env = {
        "INFER_GRACEFUL_TIMEOUT_SECONDS": "2",
        "INFER_SHED_LATE_REQUESTS": "false",
        "INFER_MAX_QUEUE_TOKENS": "1000000",
    }
    with fresh(ctx, "past-graceful", **env) as service:

        def call() -> None:
            with httpx.Client(headers={"X-API-Key": KEY}, timeout=60) as client:
                answers.append(client.post(service.base + "/v1/entities", json=MAXIMAL_NER))

        threads = [threading.Thread(target=call) for _ in range(3)]
        for thread in threads:
            thread.start()
        time.sleep(2.0)
        code, seconds = sigterm(service, 30)
        for thread in threads:
            thread.join(30)
    log = (ctx.out / "service-past-graceful.log").read_text(errors="replace")
    record_exit(ctx, "running_and_queued_past_graceful", code, seconds)
    kinds = sorted(answer_kind(a) for a in answers)
    check(code == 0, f"exit status {code}")
    check("terminate called" not in log, "std::terminate in the log")
    check(len(kinds) == 3 and set(kinds) <= {"ok", "draining"}, f"answers {kinds}")
    check("draining" in kinds, f"nothing was cut by the graceful timeout: {kinds}")
    return f"three maximal requests: {kinds}; exit {code} after {seconds:.1f} s"


def case_sigterm_slow_body(ctx: Context) -> str:
    with fresh(
        ctx, "slow-body", INFER_GRACEFUL_TIMEOUT_SECONDS="1", INFER_BODY_TIMEOUT_S="30"
    ) as s:
        host, port = s.base.removeprefix("http://").split(":")
        sock = socket.create_connection((host, int(port)), timeout=10)
        sock.sendall(
            b"POST /v1/entities HTTP/1.1\r\nHost: x\r\ncontent-type: application/json\r\n"
            + f"x-api-key: {KEY}\r\ncontent-length: 100\r\n\r\n{{".encode()
        )
        time.sleep(0.5)
        code, seconds = sigterm(s, 30)
        answer, _ = read_until_closed(sock, 5)
    record_exit(ctx, "slow_body_client", code, seconds)
    status = answer.split(b" ", 2)[1] if answer else b"none"
    check(code == 0, f"exit status {code}")
    check(status in (b"503", b"408"), f"answer {answer[:100]!r}")
    check(b"application/json" in answer.lower(), "answer is not JSON")
    return f"client mid-body got {status.decode()} JSON; exit {code} after {seconds:.1f} s"


SIGTERM_CASES: list[tuple[str, Callable[[Context], str]]] = [
    ("sigterm_idle", case_sigterm_idle),
    ("sigterm_in_flight", case_sigterm_in_flight),
    ("sigterm_past_graceful", case_sigterm_past_graceful),
    ("sigterm_slow_body", case_sigterm_slow_body),
]

# Issue 21 ("hard to break, part 2"): each on a fresh process or a scratch bundle directory.
FRESH_CASES: list[tuple[str, Callable[[Context], str]]] = [
    ("poison_record", case_poison_record),
    ("bundle_paths", case_bundle_paths),
    ("models_isolation", case_models_isolation),
    ("broken_bundle", case_broken_bundle),
    ("parse_setting", case_parse_setting),
    ("non_reading", case_non_reading),
    ("overload", case_overload),
]
# Only with --only: the same overload with round-robin slices, for the policy comparison.
OPTIONAL_CASES: list[tuple[str, Callable[[Context], str]]] = [
    ("overload_round_robin", case_overload_round_robin),
]


def run_case(
    ctx: Context, name: str, case: Callable[[Context], str], results: dict[str, bool]
) -> None:
    started = time.monotonic()
    try:
        detail = case(ctx)
        results[name] = True
        print(f"PASS {name} ({time.monotonic() - started:.1f} s): {detail}", flush=True)
    except Exception as exc:  # a case that breaks is a failed case, the suite goes on
        results[name] = False
        print(
            f"FAIL {name} ({time.monotonic() - started:.1f} s): {type(exc).__name__}: {exc}",
            flush=True,
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--bundles", type=Path, default=DEFAULT_BUNDLES)
    parser.add_argument("--only", default="", help="comma-separated case names")
    parser.add_argument("--out", type=Path, default=ROOT / "reports" / "faults")
    parser.add_argument("--service-root", type=Path, default=ROOT, help="checkout to serve")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    only = {n for n in args.only.split(",") if n}
    with tempfile.TemporaryDirectory() as tmp:
        key_file = Path(tmp) / "keys.txt"
        key_file.write_text(f"# keys for the fault suite\n  #retired-key\n{KEY}\n")
        SERVER_ENV["INFER_API_KEYS_FILE"] = str(key_file)
        ctx = Context(None, args.bundles, args.service_root, args.out, key_file)
        results: dict[str, bool] = {}
        started = time.monotonic()
        main_cases = [(n, c) for n, c in MAIN_CASES if not only or n in only]
        if main_cases:
            with running_service(
                args.bundles,
                args.out / "service.log",
                SERVER_ENV,
                root=args.service_root,
                headers={"X-API-Key": KEY},
            ) as service:
                ctx.service = service
                print(f"service on {service.base}: {service.models}", flush=True)
                for name, case in main_cases:
                    run_case(ctx, name, case, results)
            code = service.process.returncode
            results["exit_0_after_the_cases"] = code == 0
            print(f"{'PASS' if code == 0 else 'FAIL'} exit_0_after_the_cases: status {code}")
        for name, case in [*SIGTERM_CASES, *FRESH_CASES, *OPTIONAL_CASES]:
            optional = (name, case) in OPTIONAL_CASES
            if (not only and not optional) or name in only:
                run_case(ctx, name, case, results)
    failed = [n for n, ok in results.items() if not ok]
    (args.out / "faults.json").write_text(json.dumps(ctx.figures, indent=1) + "\n")
    print(json.dumps(ctx.figures, indent=1))
    print(
        f"fault suite: {len(results) - len(failed)}/{len(results)} passed in "
        f"{time.monotonic() - started:.0f} s" + (f"; FAILED: {', '.join(failed)}" if failed else "")
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
