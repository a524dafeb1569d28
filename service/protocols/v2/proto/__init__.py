"""The Open Inference Protocol's gRPC messages and service (generated; see ``generate.py``)."""
