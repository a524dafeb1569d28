"""Readiness over v2 (REST and gRPC) tracks /readyz through loading and draining; API keys guard
v2 as they guard /v1 (probes open); gRPC calls are counted in the request metrics."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import grpc
import httpx
import numpy as np
import pytest
import tritonclient.grpc as tritongrpc
import tritonclient.http as tritonhttp

# tritonclient's stubs of the same protocol: ours (also package "inference") cannot share a
# process's protobuf descriptor pool with them.
from tritonclient.grpc import service_pb2 as pb
from tritonclient.grpc import service_pb2_grpc as pb_grpc
from tritonclient.utils import InferenceServerException

from tests.helpers import free_port
from tests.protocols.v2_server import v2_server

pytestmark = pytest.mark.slow
KEY = "v2-test-key-0123456789"


def server_ready_grpc(address: str) -> bool:
    with grpc.insecure_channel(address) as channel:
        stub = pb_grpc.GRPCInferenceServiceStub(channel)
        return bool(stub.ServerReady(pb.ServerReadyRequest(), timeout=5).ready)


def test_v2_ready_tracks_readyz_through_loading_and_draining(default_bundles_dir: Path) -> None:
    port, grpc_port = free_port(), free_port()
    environ = {
        **os.environ,
        "INFER_BUNDLES_DIR": str(default_bundles_dir),
        "INFER_MODELS": '["intent-food"]',
        "INFER_PORT": str(port),
        "INFER_GRPC_ENABLED": "true",
        "INFER_GRPC_PORT": str(grpc_port),
        "INFER_DRAIN_SECONDS": "4",
        "INFER_LOG_LEVEL": "warning",
    }
    process = subprocess.Popen([sys.executable, "-m", "service"], env=environ)
    base = f"http://127.0.0.1:{port}"
    pairs: list[tuple[int, int]] = []  # (v2 ready status, then /readyz status)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            assert process.poll() is None, "server exited during start-up"
            try:
                v2 = httpx.get(f"{base}/v2/health/ready", timeout=2).status_code
                readyz = httpx.get(f"{base}/readyz", timeout=2).status_code
            except httpx.TransportError:
                time.sleep(0.1)
                continue
            pairs.append((v2, readyz))
            if readyz == 200:
                break
            time.sleep(0.05)
        assert pairs and pairs[-1][1] == 200, pairs
        # Loading only ever goes from not ready to ready: v2 ready (asked first) implies /readyz.
        for v2, readyz in pairs:
            assert v2 in (200, 400) and readyz in (200, 503)
            assert v2 != 200 or readyz == 200, pairs
        assert httpx.get(f"{base}/v2/health/ready", timeout=2).status_code == 200
        assert server_ready_grpc(f"127.0.0.1:{grpc_port}")
        process.send_signal(signal.SIGTERM)
        time.sleep(1.0)  # draining for 4 s: /readyz 503, everything else still served
        assert httpx.get(f"{base}/readyz", timeout=2).status_code == 503
        response = httpx.get(f"{base}/v2/health/ready", timeout=2)
        assert response.status_code == 400 and response.json() == {"ready": False}
        assert httpx.get(f"{base}/v2/health/live", timeout=2).status_code == 200
        assert not server_ready_grpc(f"127.0.0.1:{grpc_port}")
        assert process.wait(timeout=60) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_api_keys_guard_v2_rest_and_grpc(default_bundles_dir: Path) -> None:
    env = {"INFER_MODELS": '["intent-food"]', "INFER_API_KEYS": f'["{KEY}"]'}
    with v2_server(default_bundles_dir, **env) as server:
        # REST: the v2 probes are open like /readyz; everything else needs the key.
        for path in ("/v2/health/live", "/v2/health/ready"):
            assert httpx.get(server.http + path, timeout=10).status_code == 200
        assert httpx.get(server.http + "/v2/models/intent-food", timeout=10).status_code == 401
        http = tritonhttp.InferenceServerClient(server.http_hostport)
        with pytest.raises(InferenceServerException):
            http.get_model_metadata("intent-food")
        meta = http.get_model_metadata("intent-food", headers={"X-API-Key": KEY})
        assert meta["name"] == "intent-food"
        # gRPC: ServerLive/ServerReady open; the rest UNAUTHENTICATED without a valid key.
        client = tritongrpc.InferenceServerClient(server.grpc)
        assert client.is_server_live() and client.is_server_ready()
        tensor = tritongrpc.InferInput("text", [1], "BYTES")
        tensor.set_data_from_numpy(np.array([b"where is my order?"], dtype=object))
        for headers in (None, {"authorization": "Bearer wrong-key"}, {"x-api-key": "nope"}):
            with pytest.raises(InferenceServerException) as raised:
                client.infer("intent-food", [tensor], headers=headers)
            assert raised.value.status() == "StatusCode.UNAUTHENTICATED"
        for headers in ({"authorization": f"Bearer {KEY}"}, {"x-api-key": KEY}):
            result = client.infer("intent-food", [tensor], headers=headers)
            assert result.as_numpy("probabilities").shape == (1, 8)
            assert client.is_model_ready("intent-food", headers=headers)
        # Counted in the request metrics: route = the RPC, method GRPC, status = the gRPC code.
        metrics = httpx.get(server.http + "/metrics", timeout=10).text
        infer_rpc = "/inference.GRPCInferenceService/ModelInfer"
        assert count(metrics, route=infer_rpc, method="GRPC", status="OK") == 2
        assert count(metrics, route=infer_rpc, method="GRPC", status="UNAUTHENTICATED") == 3


def count(metrics: str, **labels: str) -> float:
    """infer_request_duration_seconds_count of the series with these labels (any order)."""
    name = "infer_request_duration_seconds_count{"
    for line in metrics.splitlines():
        head, _, value = line.rpartition(" ")
        if line.startswith(name) and all(f'{k}="{v}"' in head for k, v in labels.items()):
            return float(value)
    return 0.0
