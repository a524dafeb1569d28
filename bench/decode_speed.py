"""Time the NER decoder alone (constrained Viterbi + forward-backward + entity scores).

Not a test: random CRF scores over an 11-tag BIO set (the size of the default food model), a
20-word text alone and 32 such texts in one batch, median CPU time of the calling thread over
repeats (less disturbed by other jobs than wall time), the CPU printed first.

    .venv/bin/python -m bench.decode_speed --words 20 --repeats 300
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from families.ner.crf import CrfParams
from families.ner.decoding import WordDecoder
from families.ner.tagging import TagScheme
from service.runtime.cpu_features import current_cpu

LABELS = ["O"] + [f"{p}-{t}" for t in ("A", "B", "C", "D", "E") for p in "BI"]


def _decode_ms(decoder: WordDecoder, texts: int, words: int, repeats: int) -> dict[str, float]:
    rng = np.random.default_rng(0)
    k = decoder.crf.num_tags
    scores = [rng.normal(size=(words, k)) * 3 for _ in range(texts)]
    cls = [rng.normal(size=k) for _ in range(texts)]
    parts: dict[str, list[float]] = {"viterbi+forward-backward": [], "spans+entity scores": []}
    for i in range(repeats + 10):
        t0 = time.thread_time()
        decoded = decoder.decode(scores, cls)
        t1 = time.thread_time()
        spans = [
            (row, first, last)
            for row in range(texts)
            for first, last, _ in decoder.scheme.spans(decoded.word_tags(row))
        ]
        decoder.entity_scores(decoded, spans)  # as the pipeline scores them: all at once
        t2 = time.thread_time()
        if i >= 10:  # warm-up
            parts["viterbi+forward-backward"].append(t1 - t0)
            parts["spans+entity scores"].append(t2 - t1)
    out = {name: statistics.median(v) * 1e3 for name, v in parts.items()}
    out["total"] = sum(out.values())
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--words", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=300)
    args = parser.parse_args()
    print(f"CPU: {current_cpu().describe()}")
    scheme = TagScheme.parse(LABELS)
    rng = np.random.default_rng(1)
    k = len(LABELS)
    crf = CrfParams(rng.normal(size=k), rng.normal(size=k), rng.normal(size=(k, k)))
    decoder = WordDecoder(scheme, crf.with_penalties(scheme.penalties()), cls_tag=0)
    print("| texts × words | Viterbi + forward-backward ms | spans + scores ms | total ms |")
    print("|---|---:|---:|---:|")
    for texts in (1, 32):
        ms = _decode_ms(decoder, texts, args.words, args.repeats)
        print(
            f"| {texts} × {args.words} | {ms['viterbi+forward-backward']:.3f} "
            f"| {ms['spans+entity scores']:.3f} | {ms['total']:.3f} |"
        )


if __name__ == "__main__":
    main()
