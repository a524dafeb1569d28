"""Export stage: trained PyTorch checkpoints → self-describing, validated ONNX bundles."""
