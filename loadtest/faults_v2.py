"""Fault cases of the Open Inference Protocol's gRPC front end (``python -m loadtest.faults_v2``).

Starts ``python -m service`` with gRPC on (``INFER_GRPC_ENABLED``) and the fault suite's settings,
then: a cancelled ModelInfer on a maximal NER request frees the model within one slice (its queued
and running work dropped, counted as cancelled, recorded with status CANCELLED); a ModelInfer past
its client deadline gets DEADLINE_EXCEEDED at that deadline and frees the model the same way; bad
tensors over REST and gRPC get 400 / INVALID_ARGUMENT, never a 5xx. PASS/FAIL lines as in
``loadtest.faults``; exit status 1 on any failure. ``main(argv)`` is what ``loadtest.faults`` can
call to run these after its own cases.
"""

from __future__ import annotations

import argparse
import json
import struct
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc

from loadtest.faults import KEY, MAXIMAL_NER, SERVER_ENV, Context, check, metric, run_case
from loadtest.server import DEFAULT_BUNDLES, ROOT, free_port, running_service
from service.protocols.v2.proto import open_inference_pb2 as pb
from service.protocols.v2.proto import open_inference_pb2_grpc as pb_grpc

AUTH = (("x-api-key", KEY),)
SHORT_TEXT = "tushar se 2 misal mangwao"
# About one slice of NER work (INFER_SLICE_TOKENS, 1,024 by default): one token per CJK character.
ONE_SLICE_TEXT = "漢" * 1000
RPC_ROUTE = "/inference.GRPCInferenceService/ModelInfer"


@dataclass
class GrpcContext(Context):
    grpc_address: str = ""

    def stub(self) -> tuple[grpc.Channel, Any]:
        channel = grpc.insecure_channel(self.grpc_address)
        return channel, pb_grpc.GRPCInferenceServiceStub(channel)  # type: ignore[no-untyped-call]


def infer_request(model: str, texts: list[str]) -> Any:
    raw = b"".join(struct.pack("<I", len(b)) + b for b in (t.encode() for t in texts))
    tensor = pb.ModelInferRequest.InferInputTensor(
        name="text", datatype="BYTES", shape=[len(texts)]
    )
    return pb.ModelInferRequest(model_name=model, inputs=[tensor], raw_input_contents=[raw])


def timed(stub: Any, texts: list[str]) -> float:
    started = time.monotonic()
    stub.ModelInfer(infer_request("ner-food", texts), metadata=AUTH, timeout=60)
    return time.monotonic() - started


def scrape(ctx: Context) -> str:
    with ctx.client() as client:
        return client.get("/metrics").text


def cancelled_since(before: str, after: str) -> dict[str, float]:
    return {
        unit: metric(after, "infer_cancelled_total", model="ner-food", unit=unit)
        - metric(before, "infer_cancelled_total", model="ner-food", unit=unit)
        for unit in ("requests", "windows", "onnx_calls")
    }


def grpc_count(text: str, status: str) -> float:
    return metric(
        text, "infer_request_duration_seconds_count", route=RPC_ROUTE, method="GRPC", status=status
    )


def one_slice_s(stub: Any) -> tuple[float, float]:
    """Idle latency of a short request, and of about one slice of work (best of three each)."""
    short = min(timed(stub, [SHORT_TEXT]) for _ in range(3))
    one = min(timed(stub, [ONE_SLICE_TEXT]) for _ in range(3))
    return short, one


def free_after_giving_up(ctx: GrpcContext, give_up: Callable[[Any], str]) -> dict[str, Any]:
    """Start a maximal NER ModelInfer, let ``give_up`` end it (cancel, deadline), then time the
    next short request: how long the model stayed busy with work nobody waits for."""
    channel, stub = ctx.stub()
    with channel:
        short, one = one_slice_s(stub)
        before = scrape(ctx)
        outcome = give_up(stub)
        free = timed(stub, [SHORT_TEXT])
        time.sleep(0.5)
        after = scrape(ctx)
    return {
        "outcome": outcome,
        "short_idle_s": round(short, 3),
        "one_slice_s": round(one, 3),
        "free_after_s": round(free, 3),
        "cancelled": cancelled_since(before, after),
        "grpc_statuses": {
            s: grpc_count(after, s) - grpc_count(before, s)
            for s in ("CANCELLED", "DEADLINE_EXCEEDED")
        },
    }


def check_free_within_a_slice(figures: dict[str, Any]) -> None:
    bound = figures["short_idle_s"] + figures["one_slice_s"] + 0.5
    free = figures["free_after_s"]
    check(free <= bound, f"model busy {free} s after the RPC ended (> {bound:.2f} s)")


def case_grpc_cancel(ctx: GrpcContext) -> str:
    """A client cancels a maximal NER ModelInfer: the model answers the next request within
    about one slice (its work dropped, not finished), the RPC is recorded as CANCELLED."""

    def cancel(stub: Any) -> str:
        request = infer_request("ner-food", MAXIMAL_NER["texts"])
        call = stub.ModelInfer.future(request, metadata=AUTH, timeout=60)
        time.sleep(1.5)
        check(not call.done(), "the maximal request finished before it could be cancelled")
        call.cancel()
        return "cancelled" if call.cancelled() else f"not cancelled: {call.code()}"

    figures = free_after_giving_up(ctx, cancel)
    ctx.figures["grpc_cancel"] = figures
    check(figures["outcome"] == "cancelled", figures["outcome"])
    bound = figures["short_idle_s"] + figures["one_slice_s"] + 0.5
    check(
        figures["free_after_s"] <= bound, f"model busy {figures['free_after_s']} s (> {bound:.2f})"
    )
    cancelled = figures["cancelled"]
    check(cancelled["requests"] >= 1 and cancelled["windows"] > 0, f"cancelled {cancelled}")
    check(figures["grpc_statuses"]["CANCELLED"] == 1, f"recorded {figures['grpc_statuses']}")
    return (
        f"next request answered in {figures['free_after_s']:.2f} s (short idle "
        f"{figures['short_idle_s']:.2f} s, one slice {figures['one_slice_s']:.2f} s); "
        f"cancelled {cancelled}"
    )


def case_grpc_deadline(ctx: GrpcContext) -> str:
    """A maximal NER ModelInfer with a 1 s client deadline: DEADLINE_EXCEEDED at about 1 s and
    the model free again within about one slice."""

    def expire(stub: Any) -> str:
        started = time.monotonic()
        try:
            stub.ModelInfer(
                infer_request("ner-food", MAXIMAL_NER["texts"]), metadata=AUTH, timeout=1.0
            )
        except grpc.RpcError as exc:
            return f"{exc.code().name} after {time.monotonic() - started:.2f} s"
        return "answered"

    figures = free_after_giving_up(ctx, expire)
    ctx.figures["grpc_deadline"] = figures
    check(figures["outcome"].startswith("DEADLINE_EXCEEDED"), figures["outcome"])
    bound = figures["short_idle_s"] + figures["one_slice_s"] + 0.5
    check(
        figures["free_after_s"] <= bound, f"model busy {figures['free_after_s']} s (> {bound:.2f})"
    )
    check(figures["cancelled"]["requests"] >= 1, f"cancelled {figures['cancelled']}")
    return f"{figures['outcome']}; next request answered in {figures['free_after_s']:.2f} s"


def case_v2_bad_tensors(ctx: GrpcContext) -> str:
    """Hostile tensors over REST and gRPC: 400 / INVALID_ARGUMENT, never a 5xx."""
    bodies: list[Any] = [
        {"inputs": [{"name": "text", "datatype": "FP32", "shape": [1], "data": [1.0]}]},
        {"inputs": [{"name": "text", "datatype": "BYTES", "shape": [3], "data": ["a"]}]},
        {"inputs": [{"name": "text", "datatype": "BYTES", "shape": [-1], "data": ["a"]}]},
        {"inputs": [{"name": "text", "datatype": "BYTES", "shape": [1], "data": [None]}]},
        {"inputs": [{"name": "text", "datatype": "BYTES", "shape": [1], "data": [["a", ["b"]]]}]},
        {"inputs": [{"name": "text", "datatype": "BYTES", "shape": [1], "data": {"a": 1}}]},
        {"inputs": "text"},
        {"inputs": [{"name": "text", "datatype": "BYTES", "shape": [1], "data": ["x" * 30_000]}]},
        [],
    ]
    statuses = []
    with ctx.client() as client:
        for body in bodies:
            response = client.post("/v2/models/ner-food/infer", content=json.dumps(body))
            statuses.append(response.status_code)
            check(response.status_code == 400, f"{body!s:.80}: {response.status_code}")
            check(set(response.json()) == {"error"}, response.text)
    channel, stub = ctx.stub()
    codes = []
    with channel:
        for raw in (b"\x05\x00\x00\x00ab", b"\x01\x00", b"\xff\xff\xff\xff"):
            tensor = pb.ModelInferRequest.InferInputTensor(name="text", datatype="BYTES", shape=[1])
            request = pb.ModelInferRequest(
                model_name="ner-food", inputs=[tensor], raw_input_contents=[raw]
            )
            try:
                stub.ModelInfer(request, metadata=AUTH, timeout=30)
                codes.append("OK")
            except grpc.RpcError as exc:
                codes.append(exc.code().name)
    check(set(codes) == {"INVALID_ARGUMENT"}, f"gRPC codes {codes}")
    return f"REST {sorted(set(statuses))} for {len(bodies)} bodies; gRPC {sorted(set(codes))}"


CASES: list[tuple[str, Callable[[GrpcContext], str]]] = [
    ("v2_bad_tensors", case_v2_bad_tensors),
    ("grpc_cancel", case_grpc_cancel),
    ("grpc_deadline", case_grpc_deadline),
]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--bundles", type=Path, default=DEFAULT_BUNDLES)
    parser.add_argument("--only", default="", help="comma-separated case names")
    parser.add_argument("--out", type=Path, default=ROOT / "reports" / "faults")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    only = {n for n in args.only.split(",") if n}
    port = free_port()
    results: dict[str, bool] = {}
    with tempfile.TemporaryDirectory() as tmp:
        key_file = Path(tmp) / "keys.txt"
        key_file.write_text(f"{KEY}\n")
        env = {
            **SERVER_ENV,
            "INFER_API_KEYS_FILE": str(key_file),
            "INFER_GRPC_ENABLED": "true",
            "INFER_GRPC_PORT": str(port),
        }
        ctx = GrpcContext(None, args.bundles, ROOT, args.out, key_file)
        ctx.grpc_address = f"127.0.0.1:{port}"
        with running_service(
            args.bundles, args.out / "service-v2.log", env, headers={"X-API-Key": KEY}
        ) as service:
            ctx.service = service
            for name, case in CASES:
                if not only or name in only:
                    run_case(ctx, name, case, results)  # type: ignore[arg-type]
    failed = [n for n, ok in results.items() if not ok]
    (args.out / "faults_v2.json").write_text(json.dumps(ctx.figures, indent=1) + "\n")
    print(
        f"v2 fault cases: {len(results) - len(failed)}/{len(results)} passed"
        + (f"; FAILED: {', '.join(failed)}" if failed else "")
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
