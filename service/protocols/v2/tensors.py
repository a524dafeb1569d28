"""Tensors of the Open Inference Protocol, independent of REST or gRPC: what each task takes and
answers, the element codecs (JSON data, raw little-endian bytes, length-prefixed BYTES), and the
checks that turn a malformed tensor into a 400 / INVALID_ARGUMENT naming the tensor.

Every model takes one input, ``text``: ``BYTES`` of shape ``[n]`` (UTF-8 texts). Outputs:

- NER: ``entities`` ``BYTES [n]``, per text a JSON array of ``{label, start, end, text, score}``
  (exactly /v1/entities' ``entities``).
- Classifiers (classify and postures bundles): ``labels`` ``BYTES [n]``, per text a JSON array of
  the predicted classes ``{label, probability, threshold}`` most probable first (exactly /v1's
  ``labels`` / ``postures``); ``probabilities`` ``FP32 [n, C]``; ``predicted`` ``BOOL [n, C]``
  (the classes in ``labels``); ``windows`` ``INT32 [n]``; ``classes`` ``BYTES [C]`` (the
  column names of the two matrices, in the bundle's label order).
"""

from __future__ import annotations

import json
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from service.errors import ServiceError
from service.protocols.v2.dataplane import Answer, ModelView

INPUT = "text"
NER_OUTPUTS = ("entities",)
CLASSIFIER_OUTPUTS = ("labels", "probabilities", "predicted", "windows", "classes")
# Element types of the protocol (name -> numpy dtype, little-endian); BYTES is an object array.
NUMPY_TYPES: dict[str, str] = {
    "BOOL": "|b1",
    "UINT8": "|u1",
    "UINT16": "<u2",
    "UINT32": "<u4",
    "UINT64": "<u8",
    "INT8": "|i1",
    "INT16": "<i2",
    "INT32": "<i4",
    "INT64": "<i8",
    "FP16": "<f2",
    "FP32": "<f4",
    "FP64": "<f8",
}
DATATYPES = frozenset({*NUMPY_TYPES, "BYTES", "BF16"})
MAX_TOP_K = 1000


class BadTensor(ServiceError):
    """A request tensor or parameter the protocol or this model does not accept."""

    status, type = 400, "invalid_tensor"


@dataclass(frozen=True)
class InputTensor:
    name: str
    datatype: str
    shape: list[int]
    elements: list[Any]  # flattened row-major elements (bytes or str for BYTES)


@dataclass(frozen=True)
class OutputTensor:
    name: str
    datatype: str
    shape: list[int]
    array: np.ndarray  # BYTES: an object array of bytes

    def json_data(self) -> list[Any]:
        """Flattened elements for the REST JSON ``data`` field (BYTES as UTF-8 strings)."""
        flat = self.array.reshape(-1)
        if self.datatype == "BYTES":
            return [b.decode("utf-8") for b in flat]
        values: list[Any] = flat.tolist()
        return values

    def raw(self) -> bytes:
        """Raw contents: little-endian row-major elements; BYTES length-prefixed."""
        if self.datatype == "BYTES":
            return serialize_bytes(list(self.array.reshape(-1)))
        return np.ascontiguousarray(self.array, dtype=NUMPY_TYPES[self.datatype]).tobytes()


@dataclass(frozen=True)
class TensorSpec:
    name: str
    datatype: str
    shape: list[int]


def serialize_bytes(elements: Sequence[bytes]) -> bytes:
    """BYTES raw form: each element as a 4-byte little-endian length, then its bytes."""
    return b"".join(struct.pack("<I", len(e)) + e for e in elements)


def deserialize_bytes(raw: bytes, name: str) -> list[bytes]:
    """The elements of a BYTES raw buffer; 400 when a length runs past the buffer's end."""
    out, i = [], 0
    while i < len(raw):
        if i + 4 > len(raw):
            raise BadTensor(f"input {name!r}: truncated BYTES element length at byte {i}")
        (size,) = struct.unpack_from("<I", raw, i)
        i += 4
        if i + size > len(raw):
            raise BadTensor(
                f"input {name!r}: BYTES element of {size} bytes runs past the end of the data"
            )
        out.append(raw[i : i + size])
        i += size
    return out


def flatten(data: Any) -> list[Any]:
    """Row-major elements of a (possibly nested) JSON ``data`` array."""
    if not isinstance(data, list):
        return [data]
    out: list[Any] = []
    for item in data:
        out.extend(flatten(item))
    return out


def input_specs() -> list[TensorSpec]:
    return [TensorSpec(INPUT, "BYTES", [-1])]


def output_specs(model: ModelView) -> list[TensorSpec]:
    if model.kind == "ner":
        return [TensorSpec("entities", "BYTES", [-1])]
    c = len(model.labels)
    return [
        TensorSpec("labels", "BYTES", [-1]),
        TensorSpec("probabilities", "FP32", [-1, c]),
        TensorSpec("predicted", "BOOL", [-1, c]),
        TensorSpec("windows", "INT32", [-1]),
        TensorSpec("classes", "BYTES", [c]),
    ]


def texts_of(inputs: Sequence[InputTensor]) -> list[str]:
    """The texts of the request's one ``text`` input: ``BYTES``, shape ``[n]``, UTF-8."""
    names = [t.name for t in inputs]
    if INPUT not in names:
        raise BadTensor(f"missing input {INPUT!r} (BYTES, shape [n]); got {names}")
    extra = sorted(set(names) - {INPUT})
    if extra or len(names) != 1:
        raise BadTensor(f"unexpected inputs {extra or names}: the model takes one input {INPUT!r}")
    tensor = inputs[0]
    if tensor.datatype != "BYTES":
        raise BadTensor(f"input {INPUT!r} has datatype {tensor.datatype}; expected BYTES")
    if len(tensor.shape) != 1 or tensor.shape[0] < 0:
        raise BadTensor(f"input {INPUT!r} has shape {tensor.shape}; expected [n] (one text each)")
    if len(tensor.elements) != tensor.shape[0]:
        raise BadTensor(
            f"input {INPUT!r} has shape {tensor.shape} but {len(tensor.elements)} elements"
        )
    texts = []
    for i, element in enumerate(tensor.elements):
        if isinstance(element, bytes):
            try:
                texts.append(element.decode("utf-8"))
            except UnicodeDecodeError as exc:
                raise BadTensor(f"input {INPUT!r}[{i}] is not UTF-8 ({exc.reason})") from exc
        elif isinstance(element, str):
            texts.append(element)
        else:
            raise BadTensor(f"input {INPUT!r}[{i}] is {type(element).__name__}; expected a string")
    return texts


def top_k_of(parameters: Mapping[str, Any], model: ModelView) -> int | None:
    """The ``top_k`` request parameter (classifiers only): an integer in [1, 1000]."""
    value = parameters.get("top_k")
    if value is None:
        return None
    if model.kind == "ner":
        raise BadTensor(f"parameter 'top_k' applies to classifiers; {model.name} is an NER model")
    if isinstance(value, float) and value.is_integer():
        value = int(value)  # an integer by JSON Schema's definition, as /v1's top_k
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_TOP_K:
        raise BadTensor(
            f"parameter 'top_k' must be an integer from 1 to {MAX_TOP_K}; got {value!r}"
        )
    return value


def _json_column(rows: list[list[dict[str, Any]]]) -> np.ndarray:
    column = np.empty(len(rows), dtype=object)
    column[:] = [json.dumps(row, ensure_ascii=False).encode("utf-8") for row in rows]
    return column


def outputs_of(answer: Answer, requested: Sequence[str] | None) -> list[OutputTensor]:
    """The answer as output tensors: all of the model's, or the ``requested`` ones in order."""
    model = answer.model
    known = NER_OUTPUTS if model.kind == "ner" else CLASSIFIER_OUTPUTS
    wanted = list(requested) if requested else list(known)
    unknown = [n for n in wanted if n not in known]
    if unknown:
        raise BadTensor(f"unknown outputs {unknown} for {model.name}; it has {list(known)}")
    n = len(answer.items)
    tensors: dict[str, OutputTensor] = {}
    if model.kind == "ner":
        tensors["entities"] = OutputTensor("entities", "BYTES", [n], _json_column(answer.items))
    else:
        assert answer.probabilities is not None and answer.windows is not None
        c = len(model.labels)
        index = {label: i for i, label in enumerate(model.labels)}
        predicted = np.zeros((n, c), dtype=bool)
        for row, found in enumerate(answer.items):
            for item in found:
                predicted[row, index[item["label"]]] = True
        classes = np.empty(c, dtype=object)
        classes[:] = [label.encode("utf-8") for label in model.labels]
        tensors["labels"] = OutputTensor("labels", "BYTES", [n], _json_column(answer.items))
        tensors["probabilities"] = OutputTensor(
            "probabilities", "FP32", [n, c], answer.probabilities.reshape(n, c)
        )
        tensors["predicted"] = OutputTensor("predicted", "BOOL", [n, c], predicted)
        windows = np.asarray(answer.windows, dtype=np.int32)
        tensors["windows"] = OutputTensor("windows", "INT32", [n], windows)
        tensors["classes"] = OutputTensor("classes", "BYTES", [c], classes)
    return [tensors[name] for name in wanted]
