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
        available = ort.get_available_providers()
        wanted = [p for p in (providers or ["CPUExecutionProvider"]) if p in available]
        self._session = ort.InferenceSession(
            str(model_path), sess_options=options, providers=wanted or ["CPUExecutionProvider"]
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
        feed = {name: inputs[name] for name in self._inputs}
        result = self._session.run([self._output], feed)[0]
        return np.asarray(result, dtype=np.float32)
