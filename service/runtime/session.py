"""The contract between task pipelines and whatever runs the graph.

Pipelines only need ``input_names`` and ``run``; tests swap in a fake that returns fixed scores,
and other backends (e.g. a CUDA provider) fit behind the same two members.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import numpy as np
import onnxruntime as ort
from numpy.typing import NDArray

from service.metrics import BATCH_SIZE, BATCH_TOKENS, CALL_TOKENS
from service.runtime.cancel import Cancelled, current

CPU = "CPUExecutionProvider"
# ONNX Runtime fuses MatMul + Add into Gemm (a basic, level-1 rewrite) before it turns a static
# INT8 graph's DequantizeLinear -> MatMul pairs into integer kernels (level 2). Where a weight
# product is a 2-D MatMul with a bias, as in the blocked Longformer, the Gemm wins: the product
# then runs in fp32 on dequantized weights behind quantize/dequantize pairs, slower than the fp32
# graph (a base Longformer at 512 tokens: 0.84 s vs 0.59 s). Without that rewrite every weight
# product of those graphs becomes MatMulIntegerToFloat; fp32 graphs only keep their bias Add apart.
DISABLED_OPTIMIZERS = ["MatMulAddFusion"]


class InferenceSession(Protocol):
    @property
    def input_names(self) -> list[str]: ...

    @property
    def provider(self) -> str: ...

    def run(self, inputs: dict[str, NDArray[np.int64]]) -> NDArray[np.float32]: ...


class OnnxSession:
    """One ONNX Runtime session reading one named output."""

    def __init__(
        self,
        model_path: Path,
        output_name: str,
        intra_op_threads: int,
        providers: list[str] | None = None,
    ) -> None:
        options = ort.SessionOptions()
        options.intra_op_num_threads = intra_op_threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        # Spinning worker threads burn the CPU that another session or the tokenizer needs.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.add_session_config_entry("session.inter_op.allow_spinning", "0")
        self._session = ort.InferenceSession(
            str(model_path),
            sess_options=options,
            providers=usable_providers(providers or [CPU]),
            disabled_optimizers=DISABLED_OPTIMIZERS,
        )
        self._output = output_name
        self._inputs = [i.name for i in self._session.get_inputs()]

    @property
    def input_names(self) -> list[str]:
        return self._inputs

    @property
    def provider(self) -> str:
        return str(self._session.get_providers()[0])

    def run(self, inputs: dict[str, NDArray[np.int64]]) -> NDArray[np.float32]:
        """One call; it stops early (``Cancelled``) when the batcher terminates its scope."""
        feed = {name: inputs[name] for name in self._inputs}
        options = ort.RunOptions()
        scope = current()
        if scope is not None:
            scope.attach(options)
        try:
            result = self._session.run([self._output], feed, options)[0]
        except Exception as exc:
            if scope is not None and scope.terminated:
                raise Cancelled("ONNX Runtime call terminated: nobody waits for it") from exc
            raise
        finally:
            if scope is not None:
                scope.detach(options)
        return np.asarray(result, dtype=np.float32)


def usable_providers(wanted: list[str]) -> list[str]:
    """The wanted providers this onnxruntime build has, in order; CPU always last as a fallback."""
    available = set(ort.get_available_providers())
    chosen = [p for p in dict.fromkeys(wanted) if p in available and p != CPU]
    return [*chosen, CPU]


class MeteredSession:
    """Any session, recording the size, useful and padded tokens of every call it runs."""

    def __init__(self, session: InferenceSession, model_name: str, version: str = "") -> None:
        self.session = session
        self._windows = BATCH_SIZE.labels(model_name, version, "windows")
        self._tokens = BATCH_TOKENS.labels(model_name, version)
        self._useful = CALL_TOKENS.labels(model_name, version, "useful")
        self._padding = CALL_TOKENS.labels(model_name, version, "padding")

    @property
    def input_names(self) -> list[str]:
        return self.session.input_names

    @property
    def provider(self) -> str:
        return self.session.provider

    def run(self, inputs: dict[str, NDArray[np.int64]]) -> NDArray[np.float32]:
        ids = inputs["input_ids"]
        self._windows.observe(ids.shape[0])
        self._tokens.observe(ids.size)
        useful = int(inputs["attention_mask"].sum()) if "attention_mask" in inputs else ids.size
        self._useful.inc(useful)
        self._padding.inc(ids.size - useful)
        return self.session.run(inputs)
