"""Character spans <-> BIO tags over a text's words, and seqeval's entity reading of BIO tags.

One implementation for the default build's evaluation (``default_models/evaluation.py``) and the
batch scorer's ``--eval`` (``families/ner/serving.py``): a word whose first character lies in a
span gets B-/I- of its label.
"""

from __future__ import annotations

# (type, first word, last word)
WordSpan = tuple[str, int, int]


def bio_tags(starts: list[int], spans: list[tuple[int, int, str]]) -> list[str]:
    """Words whose first character lies in a span get B-/I- of its label (later spans win)."""
    tags = ["O"] * len(starts)
    for begin, end, label in spans:
        inside = [i for i, s in enumerate(starts) if begin <= s < end]
        for n, i in enumerate(inside):
            tags[i] = f"{'B' if n == 0 else 'I'}-{label}"
    return tags


def bio_entities(tags: list[str]) -> set[WordSpan]:
    """seqeval 1.2.2 ``get_entities`` (default mode) for B/I/O tags: an I- after O or after
    another type starts an entity; a type change or B- ends one."""
    found: set[WordSpan] = set()
    prev_tag, prev_type, begin = "O", "", 0
    for i, chunk in enumerate([*tags, "O"]):
        tag, kind = chunk[0], chunk[1:].split("-", maxsplit=1)[-1] or "_"
        ends = (prev_tag in "BI" and tag in "BO") or (prev_tag != "O" and prev_type != kind)
        if ends:
            found.add((prev_type, begin, i - 1))
        if tag == "B" or (prev_tag == "O" and tag == "I") or (tag != "O" and prev_type != kind):
            begin = i
        prev_tag, prev_type = tag, kind
    return found
