"""``python -m service.batch --redact``: each record's result is what ``/v1/redact`` answers for
its text with the same options; bad combinations are refused before anything is scored."""

from __future__ import annotations

from pathlib import Path

import pytest

from service.batch.jsonl import dumps
from tests.batch.test_batch import client_for, corpus, lines_of, score, write_jsonl


@pytest.mark.parametrize("options", [["--redact", "placeholder"], ["--redact", "mask"]])
def test_redacted_records_are_the_http_answers(
    tiny_bundle: Path, tmp_path: Path, options: list[str]
) -> None:
    records = corpus(20, seed=3, longest=50)  # several 16-token windows per text
    data = write_jsonl(tmp_path / "in.jsonl", records)
    assert score(tiny_bundle.parent, data, tmp_path / "o", *options, "--min-score", "0.1") == 0
    out = {r["id"]: r["result"] for r in lines_of(tmp_path / "o")}
    body = {"mode": options[1], "min_score": 0.1}
    with client_for(tiny_bundle.parent) as client:
        answers = [client.post("/v1/redact", json={"text": r["text"], **body}) for r in records]
    assert any(out[r["id"]]["spans"] for r in records)
    for record, answer in zip(records, answers, strict=True):
        assert answer.json()["results"][0] == out[record["id"]]
        assert dumps(out[record["id"]]) in answer.text  # the same bytes
    assert all(out[r["id"]]["text"] != r["text"] for r in records if out[r["id"]]["spans"])


@pytest.mark.parametrize(
    "options",
    [
        ["--redact", "hash"],  # no key configured
        ["--redact", "mask", "--labels", "NOPE"],
        ["--labels", "FOOD"],  # without --redact
        ["--redact", "mask", "--eval"],
    ],
)
def test_bad_redaction_options_stop_before_scoring(
    tiny_bundle: Path, tmp_path: Path, options: list[str]
) -> None:
    data = write_jsonl(tmp_path / "in.jsonl", corpus(3))
    assert score(tiny_bundle.parent, data, tmp_path / "o", *options) == 2
    assert not (tmp_path / "o").exists() or not (tmp_path / "o").read_text().strip()
