"""Errors the export stage reports to the user as one clear line (no traceback)."""


class ExportError(RuntimeError):
    """The checkpoint, its labels or the exported graph are not what the export needs."""


class ParityError(ExportError):
    """The ONNX graph does not reproduce the PyTorch model within the stated tolerance."""
