"""The Open Inference Protocol (KServe v2 / Triton "v2") over REST (``rest``) and gRPC
(``grpc_server``), on the same data plane, batching, limits, auth and metrics as ``/v1``."""
