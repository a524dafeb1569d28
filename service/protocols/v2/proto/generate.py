"""Regenerate the checked-in Python stubs of ``open_inference.proto`` (needs grpcio-tools, a dev
dependency): ``python -m service.protocols.v2.proto.generate``; ``--check`` exits 1 when the
checked-in files differ from what the installed grpcio-tools generates.

The stubs are checked in so the serving image needs only ``grpcio`` and ``protobuf`` at run time,
not the protobuf compiler.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
PROTO = "open_inference.proto"
GENERATED = ("open_inference_pb2.py", "open_inference_pb2.pyi", "open_inference_pb2_grpc.py")
# Stub imports are made package-relative so they work inside service.protocols.v2.proto.
ABSOLUTE = "import open_inference_pb2 as open__inference__pb2"
RELATIVE = "from . import open_inference_pb2 as open__inference__pb2"
# The proto's package keeps our descriptors apart from a client library's in one process; the
# method paths clients call are the protocol's (open_inference.proto says why).
OUR_SERVICE = "nlp_inference.oip.GRPCInferenceService"
PROTOCOL_SERVICE = "inference.GRPCInferenceService"


def generate(out: Path) -> dict[str, str]:
    from grpc_tools import protoc  # dev dependency only

    args = [
        "protoc",
        f"-I{HERE}",
        f"--python_out={out}",
        f"--pyi_out={out}",
        f"--grpc_python_out={out}",
        str(HERE / PROTO),
    ]
    if protoc.main(args) != 0:
        raise SystemExit("protoc failed")
    files = {name: (out / name).read_text(encoding="utf-8") for name in GENERATED}
    files["open_inference_pb2_grpc.py"] = (
        files["open_inference_pb2_grpc.py"]
        .replace(ABSOLUTE, RELATIVE)
        .replace(OUR_SERVICE, PROTOCOL_SERVICE)
    )
    return files


def _current(path: Path) -> str | None:
    return path.read_text(encoding="utf-8") if path.exists() else None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="fail when the stubs are stale")
    options = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        files = generate(Path(tmp))
    stale = [n for n, text in files.items() if _current(HERE / n) != text]
    if options.check:
        if stale:
            print(f"stale generated stubs: {stale}; run python -m {__spec__.name}", file=sys.stderr)
            return 1
        return 0
    for name, text in files.items():
        (HERE / name).write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
