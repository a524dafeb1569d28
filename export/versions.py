"""Library versions recorded in every bundle, so a parity figure can be traced to its stack."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

_PACKAGES = ("nlp-inference", "torch", "transformers", "onnx", "onnxruntime", "tokenizers")


def export_versions(extra: tuple[str, ...] = ()) -> dict[str, str]:
    found = {}
    for name in (*_PACKAGES, *extra):
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            continue
    return found
