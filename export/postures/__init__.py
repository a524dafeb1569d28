"""Posture classifier export: Longformer in an ONNX-friendly form."""
