"""In-process contenders, one per subprocess so that each has its own threads and its own peak RSS.

``python -m bench.worker SPEC.json OUT.json``: SPEC names the ``kind`` and its inputs; OUT gets
the summaries. Kinds: ``ner-torch`` (PyTorch eager + pytorch-crf decode), ``ner-optimum``
(``ORTModelForTokenClassification`` + transformers pipeline), ``ner-ort`` (the raw session on
pre-tokenized, padded input), ``postures-torch`` (HF Longformer, windowed like the service) and
``gemm`` (the measured matmul peaks), ``ner-buckets`` (the raw session through the
service's batch loop, length buckets vs one padded call) and ``longformer-speed`` (HF eager vs
the blocked graph fp32 vs INT8, ``bench.longformer_speed``).
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from bench.stats import proc_status_kib, summarize
from service.runtime.cpus import available_cpus

Spec = dict[str, Any]


def _batches(texts: Sequence[str], size: int) -> list[list[str]]:
    return [list(texts[i : i + size]) for i in range(0, len(texts) - size + 1, size)]


def time_batches(
    run: Callable[[Any], object], batches: Sequence[Any], sizes: Sequence[int], spec: Spec
) -> dict[str, Any]:
    """Warm up, then time batches until all ran once or the time budget is spent."""
    for batch in batches[: spec["warmup"]]:
        run(batch)
    latencies: list[float] = []
    items = 0
    cpu0, started = time.process_time(), time.perf_counter()
    for i, batch in enumerate(batches):
        t0 = time.perf_counter()
        run(batch)
        latencies.append(time.perf_counter() - t0)
        items += sizes[i]
        if i + 1 >= spec["min_calls"] and time.perf_counter() - started > spec["budget_s"]:
            break
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu0
    return summarize(latencies, items, seconds, cpu).as_dict()


def _ner_torch(spec: Spec) -> dict[str, Any]:
    """What a team would otherwise deploy: HF tokenizer, eager BERT, pytorch-crf Viterbi."""
    import torch

    from export.checkpoint import load_checkpoint
    from families.ner.model import build_tagger
    from service.text.tokenizer import first_subtokens

    torch.set_num_threads(spec["threads"])
    raw = load_checkpoint(Path(spec["checkpoint"]))
    model = build_tagger(raw)
    crf = model.crf
    assert crf is not None, "the benchmark compares CRF taggers"
    tokenizer = raw.tokenizer

    def run(texts: list[str]) -> list[list[int]]:
        enc = tokenizer(texts, padding=True, return_tensors="pt")
        starts = torch.full((len(texts), enc["input_ids"].shape[1]), -1, dtype=torch.long)
        for row in range(len(texts)):
            word_ids = np.asarray([-1 if w is None else w for w in enc.word_ids(row)])
            first = first_subtokens(word_ids)
            starts[row, : len(first)] = torch.from_numpy(first)
        with torch.inference_mode():
            emissions = model.model(**enc).logits
            index = starts.clamp(min=0)[:, :, None].expand(-1, -1, emissions.shape[-1])
            words = emissions.gather(1, index)
            tags: list[list[int]] = crf.decode(words, mask=starts >= 0)
        return tags

    return _per_batch_size(run, spec)


def _ner_optimum(spec: Spec) -> dict[str, Any]:
    """optimum's ORT model behind transformers' token-classification pipeline."""
    import onnxruntime as ort
    from optimum.onnxruntime import ORTModelForTokenClassification
    from transformers import AutoTokenizer, pipeline

    options = ort.SessionOptions()
    options.intra_op_num_threads = spec["threads"]
    spinning = "1" if spec.get("spinning") else "0"  # bench/run.py tries both
    options.add_session_config_entry("session.intra_op.allow_spinning", spinning)
    model = ORTModelForTokenClassification.from_pretrained(
        spec["model_dir"], file_name="model.onnx", session_options=options
    )
    tokenizer = AutoTokenizer.from_pretrained(spec["model_dir"])
    tagger = pipeline(
        "token-classification", model=model, tokenizer=tokenizer, aggregation_strategy="simple"
    )
    results = {}
    for size in spec["batch_sizes"]:

        def run(texts: list[str], size: int = size) -> object:
            return tagger(texts, batch_size=size)

        batches = _batches(spec["texts"], size)
        results[str(size)] = time_batches(run, batches, [size] * len(batches), spec)
    return results


def _ner_ort(spec: Spec) -> dict[str, Any]:
    """The floor: the bundle's graph, session options as in the service, inputs prepared."""
    from service.runtime.session import OnnxSession
    from service.text.inputs import build_inputs
    from service.text.tokenizer import TextTokenizer

    bundle = Path(spec["bundle"])
    manifest = json.loads((bundle / "bundle.json").read_text())
    from bench.host import served_graph

    onnx_file = bundle / served_graph(bundle)
    session = OnnxSession(
        onnx_file, manifest["onnx"]["output"], spec["threads"], spinning=spec.get("spinning", False)
    )
    tokenizer = TextTokenizer(bundle / "tokenizer.json")
    pad = manifest["tokenizer"]["pad_token_id"]
    results = {}
    for size in spec["batch_sizes"]:
        feeds = []
        for texts in _batches(spec["texts"], size):
            rows = [e.ids for e in tokenizer.encode_batch(texts)]
            feeds.append(build_inputs(rows, tokenizer.prefix_ids, tokenizer.suffix_ids, pad))
        results[str(size)] = time_batches(session.run, feeds, [size] * len(feeds), spec)
    return results


def _per_batch_size(run: Callable[[list[str]], object], spec: Spec) -> dict[str, Any]:
    results = {}
    for size in spec["batch_sizes"]:
        batches = _batches(spec["texts"], size)
        results[str(size)] = time_batches(run, batches, [size] * len(batches), spec)
    return results


def _postures_torch(spec: Spec) -> dict[str, Any]:
    """HF Longformer with global attention on CLS, the service's windows, max over windows."""
    import torch

    from export.checkpoint import load_checkpoint
    from families.postures.model import build_longformer
    from service.text.windows import plan_windows

    torch.set_num_threads(spec["threads"])
    raw = load_checkpoint(Path(spec["checkpoint"]))
    model = build_longformer(raw)
    tokenizer = raw.tokenizer
    cls_id, sep_id = int(tokenizer.cls_token_id), int(tokenizer.sep_token_id)

    def run(text: str) -> np.ndarray:
        ids = tokenizer(text, add_special_tokens=False, verbose=False)["input_ids"]
        probs = []
        for w in plan_windows(len(ids), spec["max_length"] - 2, spec["stride"]):
            window = torch.tensor([[cls_id, *ids[w.start : w.end], sep_id]])
            global_mask = torch.zeros_like(window)
            global_mask[:, 0] = 1
            with torch.inference_mode():
                logits = model(input_ids=window, global_attention_mask=global_mask).logits
            probs.append(torch.sigmoid(logits)[0].numpy())
        return np.max(probs, axis=0)

    results: dict[str, Any] = {}
    run(spec["warmup_doc"])
    for tokens, text in spec["documents"]:
        results[str(tokens)] = _time_document(run, text, spec)
    results["vm_hwm_kib"] = proc_status_kib(os.getpid(), "VmHWM")
    return results


def _time_document(run: Callable[[str], object], text: str, spec: Spec) -> dict[str, Any]:
    """Repeat one document up to ``repeats`` times while within the per-length budget."""
    latencies: list[float] = []
    cpu0, started = time.process_time(), time.perf_counter()
    while len(latencies) < spec["repeats"]:
        t0 = time.perf_counter()
        run(text)
        latencies.append(time.perf_counter() - t0)
        if time.perf_counter() - started > spec["budget_s"]:
            break
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu0
    return summarize(latencies, len(latencies), seconds, cpu).as_dict()


def _gemm(spec: Spec) -> dict[str, Any]:
    """Peak matmul rates: ORT fp32 MatMul, ORT INT8 MatMulInteger (u8 x s8), numpy fp32."""
    from bench.host import measure_peaks

    return dict(measure_peaks(spec["n"], spec["repeats"], spec["threads"]))


def _ner_buckets(spec: Spec) -> dict[str, Any]:
    """The raw session through the service's batch loop: length buckets vs one padded call."""
    from bench.bucketing import ONE_CALL, measure
    from service.text.inputs import CALL_OVERHEAD_TOKENS

    return measure(
        Path(spec["bundle"]),
        spec["texts"],
        spec["batch_size"],
        [CALL_OVERHEAD_TOKENS, ONE_CALL],
        spec["budget_s"],
        spec["threads"],
    )


def _longformer_speed(spec: Spec) -> dict[str, Any]:
    """HF eager vs the blocked graph fp32 vs INT8, as ``python -m bench.longformer_speed``."""
    from bench.longformer_speed import measure

    return measure(
        spec["lengths"],
        spec["repeats"],
        spec["threads"],
        spec["int8"],
        spec["size"],
        log=lambda line: print(f"    {line}", flush=True),
    )


KINDS: dict[str, Callable[[Spec], dict[str, Any]]] = {
    "ner-torch": _ner_torch,
    "ner-optimum": _ner_optimum,
    "ner-ort": _ner_ort,
    "postures-torch": _postures_torch,
    "gemm": _gemm,
    "ner-buckets": _ner_buckets,
    "longformer-speed": _longformer_speed,
}


def main() -> None:
    spec = json.loads(Path(sys.argv[1]).read_text())
    spec.setdefault("threads", available_cpus())
    started = time.perf_counter()
    result = KINDS[spec["kind"]](spec)
    result["vm_hwm_kib"] = proc_status_kib(os.getpid(), "VmHWM")
    result["wall_s"] = time.perf_counter() - started
    Path(sys.argv[2]).write_text(json.dumps(result))


if __name__ == "__main__":
    main()
