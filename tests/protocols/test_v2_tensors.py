"""The protocol's tensor codecs and checks, without a server."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from service.protocols.v2.dataplane import Answer, ModelView
from service.protocols.v2.tensors import (
    BadTensor,
    InputTensor,
    deserialize_bytes,
    flatten,
    outputs_of,
    serialize_bytes,
    texts_of,
    top_k_of,
)

CLASSIFIER = ModelView("intent", "1", "classify", "single-label", ["a", "b", "c"], 100, "labels")
NER = ModelView("ner", "1", "ner", "crf", ["O", "B-FOOD"], 100, "entities")


def test_bytes_round_trip_and_truncation() -> None:
    elements = [b"", "naïve 🍢".encode(), b"x" * 300]
    raw = serialize_bytes(elements)
    assert raw[:4] == b"\x00\x00\x00\x00" and deserialize_bytes(raw, "text") == elements
    for broken in (raw[:-1], raw + b"\x01", b"\x09\x00\x00\x00abc"):
        with pytest.raises(BadTensor, match="'text'"):
            deserialize_bytes(broken, "text")


def test_texts_accept_bytes_or_str_and_refuse_the_rest() -> None:
    assert texts_of([InputTensor("text", "BYTES", [2], ["a", "é".encode()])]) == ["a", "é"]
    bad = [
        ([InputTensor("text", "FP32", [1], [1.0])], "datatype FP32"),
        ([InputTensor("text", "BYTES", [1, 1], ["a"])], "shape [1, 1]"),
        ([InputTensor("text", "BYTES", [2], ["a"])], "1 elements"),
        ([InputTensor("txt", "BYTES", [1], ["a"])], "missing input 'text'"),
        ([InputTensor("text", "BYTES", [1], ["a"])] * 2, "one input"),
        ([InputTensor("text", "BYTES", [1], [b"\xff"])], "not UTF-8"),
        ([InputTensor("text", "BYTES", [1], [None])], "NoneType"),
    ]
    for inputs, words in bad:
        with pytest.raises(BadTensor, match=re.escape(words)):
            texts_of(inputs)


def test_top_k_is_an_integer_for_classifiers_only() -> None:
    assert top_k_of({"top_k": 2}, CLASSIFIER) == 2 and top_k_of({}, NER) is None
    for value in (0, 1001, True, 1.5, "2"):
        with pytest.raises(BadTensor, match="top_k"):
            top_k_of({"top_k": value}, CLASSIFIER)
    with pytest.raises(BadTensor, match="classifiers"):
        top_k_of({"top_k": 1}, NER)


def test_classifier_outputs_line_up_with_the_labels() -> None:
    items = [[{"label": "b", "probability": 0.7, "threshold": 0.5}], []]
    probabilities = np.array([[0.1, 0.7, 0.2], [0.4, 0.3, 0.3]], dtype=np.float32)
    answer = Answer(CLASSIFIER, items, probabilities, [1, 2])
    outputs = {t.name: t for t in outputs_of(answer, None)}
    assert list(outputs) == ["labels", "probabilities", "predicted", "windows", "classes"]
    assert [json.loads(x) for x in outputs["labels"].json_data()] == items
    assert outputs["predicted"].json_data() == [False, True, False, False, False, False]
    assert outputs["classes"].json_data() == ["a", "b", "c"]
    raw = outputs["probabilities"].raw()
    assert np.frombuffer(raw, "<f4").tolist() == probabilities.reshape(-1).tolist()
    assert outputs["windows"].raw() == np.array([1, 2], "<i4").tobytes()
    assert outputs["predicted"].raw() == bytes([0, 1, 0, 0, 0, 0])
    (only,) = outputs_of(answer, ["windows"])
    assert only.name == "windows" and only.shape == [2]
    with pytest.raises(BadTensor, match="unknown outputs"):
        outputs_of(Answer(NER, [[]]), ["labels"])


def test_flatten_is_row_major() -> None:
    assert flatten([["a", "b"], ["c", ["d"]]]) == ["a", "b", "c", "d"]
