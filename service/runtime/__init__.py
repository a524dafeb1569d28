"""Model execution: the session contract the task pipelines call, and its ONNX Runtime backend."""
