"""Random checkpoints and exported bundles for the benchmark, built once and cached.

Everything lives under ``ROOT/`` (``.cache/bench`` or ``.cache/bench/quick``): ``ckpt/<name>/``
from ``default_models.random_checkpoint``, ``bundles/<name>/`` from ``python -m export``, and
``optimum/<bundle>/`` (the bundle's ONNX file with its output renamed to ``logits`` beside the HF
config and tokenizer, which is what ``ORTModelForTokenClassification`` loads).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from export.options import ExportOptions

VALIDATION_TEXTS = 300  # like the default NER build's dev split
# The bench's checkpoints have random weights: their tag scores are near ties, so INT8 flips tags
# a trained model keeps (base: 0.967 word agreement with every product INT8 while the largest
# score difference is 0.085, and keeping up to 32 of 73 products fp32 never passed 0.969; tiny:
# ~0.98). The 0.99 gate is for trained models; here the graph's speed is what is measured, so
# the gate only guards against a broken graph, and every product stays INT8.
RANDOM_MODEL_MIN_AGREEMENT = 0.9
NER_CONFIG_FILES = ("config.json", "tokenizer.json", "tokenizer_config.json", "vocab.txt")


@dataclass(frozen=True)
class Assets:
    root: Path
    size: str  # "base" or "tiny"

    @property
    def bundles(self) -> Path:
        return self.root / "bundles"

    def ckpt(self, family: str) -> Path:
        return self.root / "ckpt" / f"{family}-{self.size}"

    def ner_name(self, variant: str) -> str:
        """``int8`` is static INT8, the kind the default ``ner-food`` ships (named so that an
        older cached dynamic-INT8 bundle is never reused for it)."""
        return f"ner-{self.size}-{'int8-static' if variant == 'int8' else variant}"

    @property
    def posture_name(self) -> str:
        return f"postures-{self.size}"


def _run(command: list[str], log: Path) -> None:
    """Run a build step, its output in a log file; show the log's tail if it fails."""
    log.parent.mkdir(parents=True, exist_ok=True)
    print(f"  $ {' '.join(command)}  (log: {log})", flush=True)
    with log.open("w") as out:
        code = subprocess.call(command, stdout=out, stderr=subprocess.STDOUT)
    if code != 0:
        tail = "\n".join(log.read_text().splitlines()[-15:])
        raise RuntimeError(f"{command[2:4]} failed ({code}):\n{tail}")


def _export(family: str, options: ExportOptions, log: Path) -> None:
    """``python -m export <family>`` with ``options``, in its own process (the export's torch
    memory and threads stay out of the benchmark's), its output in ``log``."""
    from export.cli_options import to_argv

    _run([sys.executable, "-m", "export", family, *to_argv(options)], log)


def _checkpoint(assets: Assets, family: str) -> Path:
    out = assets.ckpt(family)
    if not (out / "dir" / "model.safetensors").is_file():
        _run(
            [
                sys.executable,
                "-m",
                "default_models.random_checkpoint",
                "--family",
                family,
                "--size",
                assets.size,
                "--out",
                str(out),
            ],
            assets.root / "logs" / f"ckpt-{family}.log",
        )
    return out / "dir"


def validation_file(assets: Assets, checkpoint: Path) -> Path:
    """Calibration and gate texts for static INT8: bench-style utterances (8-40 tokens) from
    another seed than the timed ones, as many as the default build's dev split (300)."""
    from bench.inputs import utterances

    out = assets.root / "data" / "validation.jsonl"
    if not out.is_file():
        count = VALIDATION_TEXTS if assets.size == "base" else 64
        texts = utterances(checkpoint / "tokenizer.json", count, seed=1)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text("".join(json.dumps({"text": t}) + "\n" for t in texts))
    return out


def ner_bundle(assets: Assets, variant: str) -> tuple[Path, Path]:
    """(checkpoint dir, bundle dir) of the BERT-CRF, exported as ``variant`` if not cached.

    ``int8`` is exported the way ``default_models/build.py`` exports ``ner-food``: static INT8
    calibrated on validation texts, with its percentile, ``--fallback-fp32`` and the same extra
    INT8 graphs (``u8s8`` where this CPU validates it: the service serves the fastest graph valid
    on the host, and every raw baseline times that graph, ``bench.host.served_graph``), but gated at
    RANDOM_MODEL_MIN_AGREEMENT. Should it still be refused, the bundle holds the fp32 graph and
    its ``variant.quantization_refused`` says why (the table reports it)."""
    from default_models.build import NER_CALIBRATION_PERCENTILE
    from default_models.int8_gate import ALSO_INT8_FORMATS

    checkpoint = _checkpoint(assets, "bert-crf")
    name = assets.ner_name(variant)
    bundle = assets.bundles / name
    also = ALSO_INT8_FORMATS if variant == "int8" else ()
    if not _exported_with(bundle, also):
        from export.variants.request import VariantRequest
        from families.ner.export import NerOptions

        windows = {"max_length": 128, "stride": 32} if assets.size == "base" else {}  # <= 40 tokens
        request = VariantRequest()
        if variant == "int8":
            request = VariantRequest(
                quantize="int8-static",
                fallback_fp32=True,
                validation=validation_file(assets, checkpoint),
                percentile=NER_CALIBRATION_PERCENTILE,
                min_agreement=RANDOM_MODEL_MIN_AGREEMENT,
                int8_also=also,
            )
        options = NerOptions(
            checkpoint=checkpoint, out=bundle, force=True, variant=request, **windows
        )
        _export("ner", options, assets.root / "logs" / f"export-{name}.log")
    return checkpoint, bundle


def _exported_with(bundle: Path, formats: tuple[str, ...]) -> bool:
    """Whether ``bundle`` is exported and carries (or its export refused) each of ``formats``: a
    bundle cached before the bench asked for them is exported again."""
    if not (bundle / "bundle.json").is_file():
        return False
    manifest = json.loads((bundle / "bundle.json").read_text())
    variant = manifest.get("variant") or {}
    if variant.get("quantization_refused"):
        return True
    done = {g.get("int8_format") for g in manifest.get("int8_graphs") or []}
    done |= set(variant.get("int8_formats_refused") or {})
    return set(formats) <= done


def graph_of(bundle: Path) -> dict[str, object]:
    """What the bundle's graph is, from its manifest: INT8 kind and gate figures, or why the
    export refused INT8 and shipped fp32."""
    manifest = json.loads((bundle / "bundle.json").read_text())
    variant = manifest.get("variant") or {}
    return {
        "quantization": variant.get("quantization"),
        "refused": variant.get("quantization_refused"),
        "agreement": variant.get("agreement"),
        "min_agreement": variant.get("min_agreement"),
        "kept_fp32_nodes": variant.get("kept_fp32_nodes"),
        "calibration": variant.get("calibration"),
        "int8_format": variant.get("int8_format"),
        "also": [
            {k: g.get(k) for k in ("int8_format", "file", "agreement", "kept_fp32_nodes")}
            for g in manifest.get("int8_graphs") or []
        ],
        "also_refused": variant.get("int8_formats_refused") or {},
    }


def posture_bundle(assets: Assets) -> tuple[Path, Path]:
    """(checkpoint dir, bundle dir) of the Longformer; the export's parity gate is slow: cached."""
    checkpoint = _checkpoint(assets, "longformer")
    bundle = assets.bundles / assets.posture_name
    if not (bundle / "bundle.json").is_file():
        from families.postures.export import PostureOptions

        max_length, parity = (4096, (1, 513, 4096)) if assets.size == "base" else (600, (1, 600))
        options = PostureOptions(
            checkpoint=checkpoint,
            out=bundle,
            force=True,
            max_length=max_length,
            parity_lengths=parity,
        )
        _export("postures", options, assets.root / "logs" / f"export-{assets.posture_name}.log")
    return checkpoint, bundle


def optimum_dir(assets: Assets, checkpoint: Path, bundle: Path) -> Path:
    """HF config + tokenizer + the bundle's ONNX graph with an extra ``logits`` output."""
    import onnx

    out = assets.root / "optimum" / bundle.name
    if (out / "model.onnx").is_file():
        return out
    staging = out.with_name(out.name + ".tmp")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    for name in NER_CONFIG_FILES:
        if (checkpoint / name).is_file():
            shutil.copy2(checkpoint / name, staging / name)
    manifest = json.loads((bundle / "bundle.json").read_text())
    model = onnx.load(str(bundle / manifest["onnx"].get("file", "model.onnx")))
    source = model.graph.output[0]
    model.graph.node.append(onnx.helper.make_node("Identity", [source.name], ["logits"]))
    logits = onnx.ValueInfoProto()
    logits.CopyFrom(source)
    logits.name = "logits"
    del model.graph.output[:]
    model.graph.output.append(logits)
    onnx.save(model, str(staging / "model.onnx"))
    shutil.rmtree(out, ignore_errors=True)
    staging.rename(out)
    return out
