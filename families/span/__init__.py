"""The span family: per-type start/end pointer and inside-span probabilities, decoded by thresholds.

Serving half (no torch): :mod:`.spec` (manifest section), :mod:`.decoding` (pure numpy span
assembly), :mod:`.runtime` (windows → ONNX → word probabilities → spans), :mod:`.serving` (what
the service needs: ``/v1/entities`` answers for it). Export half (torch): :mod:`.model`,
:mod:`.parity`, :mod:`.export` (``python -m export span``), :mod:`.calibrate`.
"""
