"""The kserve SDK's REST client (``kserve.InferenceRESTClient``, protocol v2) against the service.

Runs in the kserve venv (``make kserve-venv``), not the project's: reads
``{"base_url", "model", "texts"}`` as JSON on stdin, checks readiness, infers once with JSON
tensors and once with binary ones (``set_data_from_numpy``), checks that both agree and prints
``{"model_name", "outputs": [{"name", "datatype", "shape", "data"}]}`` (BYTES as text).
"""

import asyncio
import json
import sys
from typing import Any

import numpy as np
from kserve import InferenceRESTClient, InferInput, InferRequest, RESTConfig


def plain(output: Any) -> dict[str, Any]:
    array = output.as_numpy()
    values = [v.decode("utf-8") if isinstance(v, bytes) else v for v in array.reshape(-1)]
    data = [v.item() if hasattr(v, "item") else v for v in values]
    return {"name": output.name, "datatype": output.datatype, "shape": output.shape, "data": data}


async def main() -> int:
    request = json.load(sys.stdin)
    base, model, texts = request["base_url"], request["model"], request["texts"]
    client = InferenceRESTClient(RESTConfig(protocol="v2", timeout=120, retries=0))
    try:
        assert await client.is_server_live(base)
        assert await client.is_server_ready(base)
        assert await client.is_model_ready(base, model)
        as_json = InferInput(name="text", shape=[len(texts)], datatype="BYTES", data=texts)
        first = await client.infer(base, InferRequest(model, [as_json], request_id="k-1"), model)
        binary = InferInput(name="text", shape=[len(texts)], datatype="BYTES")
        binary.set_data_from_numpy(np.array([t.encode() for t in texts], dtype=object))
        second = await client.infer(base, InferRequest(model, [binary]), model)
    finally:
        await client.close()
    assert first.id == "k-1", first.id
    outputs = [plain(o) for o in first.outputs]
    assert outputs == [plain(o) for o in second.outputs], "JSON and binary inputs disagree"
    json.dump({"model_name": first.model_name, "outputs": outputs}, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
