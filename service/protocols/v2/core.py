"""What both front ends (REST and gRPC) do: server and model metadata, readiness, and one
inference from protocol tensors to protocol tensors through the data plane."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from service.protocols.v2 import dataplane, tensors
from service.protocols.v2.tensors import InputTensor, OutputTensor, TensorSpec
from service.registry import ModelRegistry

SERVER_NAME = "nlp-inference"
PLATFORM = "onnxruntime_onnx"


def server_version() -> str:
    try:
        return version(SERVER_NAME)
    except PackageNotFoundError:  # a source tree that is not installed
        return "0.0.0"


@dataclass(frozen=True)
class Metadata:
    name: str
    versions: list[str]
    platform: str
    inputs: list[TensorSpec]
    outputs: list[TensorSpec]


@dataclass(frozen=True)
class Inferred:
    model_name: str
    model_version: str
    outputs: list[OutputTensor]


def model_metadata(registry: ModelRegistry, name: str, version: str | None) -> Metadata:
    view, _ = dataplane.find(registry, name, version)
    group = registry.groups.get(name)
    # the versions a request may name (all ready ones), or the one asked about
    versions = [view.version] if version or group is None else group.ready() or [view.version]
    return Metadata(
        view.name,
        versions,
        PLATFORM,
        tensors.input_specs(),
        tensors.output_specs(view),
    )


def model_ready(registry: ModelRegistry, name: str, version: str | None) -> bool:
    _, ready = dataplane.find(registry, name, version)
    return ready and dataplane.server_ready(registry)


def server_ready(registry: ModelRegistry) -> bool:
    return dataplane.server_ready(registry)


async def infer(
    registry: ModelRegistry,
    name: str,
    version: str | None,
    inputs: Sequence[InputTensor],
    parameters: Mapping[str, Any],
    requested: Sequence[str] | None,
) -> Inferred:
    """Check the tensors and parameters (400 naming the tensor), run the texts through the data
    plane (its limits, batcher and metrics), answer the requested output tensors."""
    view, _ = dataplane.find(registry, name, version)
    texts = tensors.texts_of(inputs)
    top_k = tensors.top_k_of(parameters, view)
    if requested:  # unknown output names fail before any model work
        known = tensors.NER_OUTPUTS if view.kind == "ner" else tensors.CLASSIFIER_OUTPUTS
        unknown = [n for n in requested if n not in known]
        if unknown:
            raise tensors.BadTensor(f"unknown outputs {unknown} for {name}; it has {list(known)}")
    answer = await dataplane.run(registry, name, version, texts, top_k)
    return Inferred(answer.model.name, answer.model.version, tensors.outputs_of(answer, requested))
