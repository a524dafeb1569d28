"""Label alternatives of an entity span from CRF forward-backward, for review UIs.

Definition. For an entity on words ``first..last`` and an entity type ``X``, the *label marginal*
is the probability, under the served CRF (the head's scores plus the scheme's penalties), that
those words carry exactly the tags one entity of type ``X`` over them would carry:
``B-X I-X ... I-X`` (BIO), ``S-X`` or ``B-X I-X ... E-X`` (BIOES; BILOU with U/L), whatever the
other words carry. For the decoded type it is the entity's reported ``score`` (the same segment
probability); for the other types it is the same quantity for their tag sequence. The events of
different types are disjoint, so the marginals of one span sum to at most 1; the rest is the mass
of other taggings of those words (``O``, another segmentation). Softmax heads decode with zero
transitions, where this is the product of the words' per-tag probabilities.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from families.ner.crf import CrfParams, ForwardBackward
from families.ner.tagging import BEGIN, END, INSIDE, SINGLE, TagScheme

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64]


def entity_tags(scheme: TagScheme, kind: int, length: int) -> IntArray:
    """Tag ids of one entity of type index ``kind`` over ``length`` words in ``scheme``."""
    if length < 1:
        raise ValueError("an entity covers at least one word")
    ids = {
        int(role): tag
        for tag, role in enumerate(scheme.role.tolist())
        if scheme.type_of_tag[tag] == kind
    }
    if scheme.name == "BIO":
        roles = [BEGIN] + [INSIDE] * (length - 1)
    elif length == 1:
        roles = [SINGLE]
    else:
        roles = [BEGIN] + [INSIDE] * (length - 2) + [END]
    return np.asarray([ids[r] for r in roles], dtype=np.int64)


def label_marginals(
    fb: ForwardBackward,
    emissions: FloatArray,
    params: CrfParams,
    scheme: TagScheme,
    row: int,
    first: int,
    last: int,
) -> dict[str, float]:
    """The label marginal of every entity type for positions ``first..last`` of ``row``
    (positions of the decoder's sequence, i.e. with any CLS lead already added)."""
    length = last - first + 1
    segments = np.stack([entity_tags(scheme, k, length) for k in range(len(scheme.entity_types))])
    positions = np.arange(first + 1, last + 1)
    inner = params.transitions[segments[:, :-1], segments[:, 1:]].sum(axis=1)
    inner += emissions[row, positions[None, :], segments[:, 1:]].sum(axis=1)
    log_p = fb.alpha[row, first, segments[:, 0]] + inner + fb.beta[row, last, segments[:, -1]]
    probs = np.exp(np.minimum(0.0, log_p - fb.log_partition[row]))
    return {label: float(p) for label, p in zip(scheme.entity_types, probs, strict=True)}


def alternatives(marginals: dict[str, float], label: str, k: int) -> list[tuple[str, float]]:
    """The ``k`` most probable other types, most probable first (ties: the scheme's order)."""
    others = [(name, p) for name, p in marginals.items() if name != label]
    return sorted(others, key=lambda item: -item[1])[: max(k, 0)]
