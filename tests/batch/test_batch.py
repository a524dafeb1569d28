"""``python -m service.batch``: the API's exact answers, resumption after kill -9 and SIGTERM,
torn-line repair, bad records, shards, and evaluation figures (tiny random bundles; the default
NER bundle for the evaluation)."""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from service.batch.__main__ import main
from service.batch.jsonl import AppendLog, dumps
from service.batch.shard import id_key, shard_of
from service.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
WORDS = "tushar inayat cafe se 2 misal pizza mangwao chahiye extra spicy मसाला dosa ½ kg 🍕".split()  # noqa: SIM905


def corpus(count: int, seed: int = 0, longest: int = 40) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    return [
        {"id": f"doc-{i}", "text": " ".join(rng.choices(WORDS, k=rng.randint(1, longest))), "n": i}
        for i in range(count)
    ]


def write_jsonl(path: Path, records: list[dict[str, Any]], extra: Sequence[str] = ()) -> Path:
    lines = [json.dumps(r, ensure_ascii=False) for r in records] + list(extra)
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def score(bundles: Path, data: Path, out: Path, *args: str) -> int:
    common = ["--bundles", str(bundles), "--input", str(data), "--output", str(out)]
    return main([*common, "--no-progress", *args])


@contextmanager
def client_for(bundles: Path) -> Iterator[TestClient]:
    with TestClient(create_app(Settings(bundles_dir=bundles))) as client:
        deadline = time.monotonic() + 60
        while client.get("/readyz").status_code != 200 and time.monotonic() < deadline:
            time.sleep(0.05)
        yield client


def lines_of(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_ner_results_are_byte_for_byte_the_http_answers(tiny_bundle: Path, tmp_path: Path) -> None:
    records = corpus(40, longest=60)  # 16-token windows: many texts span several windows
    data = write_jsonl(tmp_path / "in.jsonl", records)
    assert score(tiny_bundle.parent, data, tmp_path / "o") == 0
    out = {r["id"]: r for r in lines_of(tmp_path / "o")}
    assert len(out) == 40 and all(out[r["id"]]["n"] == r["n"] for r in records)  # carried
    with client_for(tiny_bundle.parent) as client:
        model = client.get("/v1/models").json()["models"][0]
        head = dumps({"name": model["name"], "version": model["version"]})
        one_by_one = [client.post("/v1/entities", json={"text": r["text"]}) for r in records]
        together = client.post("/v1/entities", json={"texts": [r["text"] for r in records]})
    assert any(out[r["id"]]["result"]["entities"] for r in records)
    for record, response in zip(records, one_by_one, strict=True):
        expected = f'{{"model":{head},"results":[{dumps(out[record["id"]]["result"])}]}}'
        assert response.content == expected.encode("utf-8")
    joined = ",".join(dumps(out[r["id"]]["result"]) for r in records)
    assert together.content == f'{{"model":{head},"results":[{joined}]}}'.encode()


def test_posture_results_are_byte_for_byte_the_http_answers(
    tiny_posture_bundle: Path, tmp_path: Path
) -> None:
    sentence = "the court of appeals reviewed the motion to dismiss de novo. "
    records = [{"id": i, "text": sentence * k} for i, k in enumerate([1, 3, 40, 90, 7, 150, 2])]
    data = write_jsonl(tmp_path / "in.jsonl", records)
    bundles = tiny_posture_bundle.parent
    assert score(bundles, data, tmp_path / "o", "--scores", "--top-k", "2") == 0
    out = {r["id"]: r["result"] for r in lines_of(tmp_path / "o")}
    assert max(r["windows"] for r in out.values()) > 3
    with client_for(bundles) as client:
        model = client.get("/v1/models").json()["models"][0]
        head = dumps({"name": model["name"], "version": model["version"]})
        for record in records:
            body = {"text": record["text"], "return_scores": True, "top_k": 2}
            response = client.post("/v1/postures", json=body)
            expected = f'{{"model":{head},"results":[{dumps(out[record["id"]])}]}}'
            assert response.content == expected.encode("utf-8")


def test_classify_results_are_the_http_answers(
    classifier_bundles: Callable[[str], Path], tmp_path: Path
) -> None:
    bundles = tmp_path / "bundles"
    bundles.mkdir()
    shutil.copytree(classifier_bundles("distilbert-single-dir"), bundles / "intents")
    records = corpus(12, longest=90)  # 64-token windows: the longest texts take several
    data = write_jsonl(tmp_path / "in.jsonl", records)
    assert score(bundles, data, tmp_path / "o", "--scores") == 0
    out = {r["id"]: r["result"] for r in lines_of(tmp_path / "o")}
    assert max(r["windows"] for r in out.values()) > 1
    assert all(len(r["labels"]) == 1 for r in out.values())  # single-label, no abstention
    with client_for(bundles) as client:
        for record in records:
            body = {"text": record["text"], "return_scores": True}
            answer = client.post("/v1/classify", json=body).json()
            assert answer["head"] == "single-label"
            assert answer["results"] == [out[record["id"]]]


def test_bad_records_go_to_the_error_file_and_the_run_goes_on(
    tiny_bundle: Path, tmp_path: Path
) -> None:
    good = corpus(5)
    bad = [
        "{not json",
        '["a", "list"]',
        '{"id": "x1"}',
        '{"id": "x2", "text": 7}',
        '{"id": "x3", "text": "   "}',
        '{"id": "doc-1", "text": "a duplicate id"}',
        '{"id": {"nested": 1}, "text": "odd id"}',
        '{"id": "x4", "text": "' + "a" * 20_001 + '"}',
    ]
    data = write_jsonl(tmp_path / "in.jsonl", good, bad)
    out = tmp_path / "o.jsonl"
    assert score(tiny_bundle.parent, data, out) == 1
    assert sorted(r["id"] for r in lines_of(out)) == sorted(r["id"] for r in good)
    errors = lines_of(tmp_path / "o.jsonl.errors.jsonl")
    reasons = {e["line"]: e["reason"] for e in errors}
    assert sorted(reasons) == list(range(6, 14))
    assert reasons[6].startswith("not JSON") and reasons[7] == "not a JSON object"
    assert reasons[8] == "no 'text' field" and reasons[9] == "'text' is not a string"
    assert "empty" in reasons[10] and reasons[11] == "duplicate id (first at line 2)"
    assert "id must be" in reasons[12] and "20001 characters; the limit is 20000" in reasons[13]
    # A second run reports nothing twice and writes nothing twice, and still says they failed.
    assert score(tiny_bundle.parent, data, out) == 1
    assert len(lines_of(out)) == 5 and lines_of(tmp_path / "o.jsonl.errors.jsonl") == errors


def test_a_torn_last_line_is_repaired_and_its_record_rescored(
    tiny_bundle: Path, tmp_path: Path
) -> None:
    data = write_jsonl(tmp_path / "in.jsonl", corpus(30))
    whole, torn = tmp_path / "whole.jsonl", tmp_path / "torn.jsonl"
    assert score(tiny_bundle.parent, data, whole) == 0
    content = whole.read_bytes()
    cut = content.index(b"\n", len(content) // 2) + 25  # 25 bytes into the next line
    torn.write_bytes(content[:cut])
    assert score(tiny_bundle.parent, data, torn) == 0
    assert torn.read_bytes() == content


def test_two_shards_merged_equal_one_run(tiny_bundle: Path, tmp_path: Path) -> None:
    data = write_jsonl(tmp_path / "in.jsonl", corpus(60))
    one = tmp_path / "one.jsonl"
    assert score(tiny_bundle.parent, data, one) == 0
    shards = [tmp_path / f"shard-{i}.jsonl" for i in range(2)]
    for i, path in enumerate(shards):
        assert score(tiny_bundle.parent, data, path, "--shard", f"{i}/2") == 0
    parts = [path.read_text().splitlines() for path in shards]
    assert all(20 < len(p) < 40 for p in parts)  # a real split, no record twice
    assert sorted(parts[0] + parts[1]) == sorted(one.read_text().splitlines())


def _run_until_lines(args: list[str], out: Path, minimum: int, sig: int) -> int:
    """Start the command, wait until ``out`` has ``minimum`` lines, send ``sig``; exit code."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "service.batch", *args], cwd=ROOT, env=env)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            if out.exists() and out.read_bytes().count(b"\n") >= minimum:
                proc.send_signal(sig)
                break
            time.sleep(0.01)
        return proc.wait(60)
    finally:
        if proc.poll() is None:
            proc.kill()


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM], ids=["kill-9", "sigterm"])
def test_a_run_stopped_midway_resumes_to_the_uninterrupted_output(
    tiny_bundle: Path, tmp_path: Path, sig: int
) -> None:
    records = corpus(6000, seed=1, longest=60)
    data = write_jsonl(tmp_path / "in.jsonl", records)
    whole, resumed = tmp_path / "whole.jsonl", tmp_path / "resumed.jsonl"
    args = ["--bundles", str(tiny_bundle.parent), "--input", str(data), "--no-progress"]
    stopped = [*args, "--output", str(resumed), "--chunk-lines", "512"]
    code = _run_until_lines(stopped, resumed, 700, sig)
    assert code == (-signal.SIGKILL if sig == signal.SIGKILL else 128 + signal.SIGTERM)
    partial = resumed.read_bytes()
    assert 700 <= partial.count(b"\n") < len(records)  # stopped in the middle
    if sig == signal.SIGTERM:
        assert partial.endswith(b"\n")  # stopped after a batch: no torn line
    assert score(tiny_bundle.parent, data, resumed, "--chunk-lines", "512") == 0
    assert score(tiny_bundle.parent, data, whole, "--chunk-lines", "512") == 0
    assert resumed.read_bytes() == whole.read_bytes()


def test_a_second_writer_and_bad_arguments_are_refused(tiny_bundle: Path, tmp_path: Path) -> None:
    data = write_jsonl(tmp_path / "in.jsonl", corpus(3))
    out = tmp_path / "o.jsonl"
    holder = AppendLog(out).open()  # another process's lock (flock is per open file)
    try:
        assert score(tiny_bundle.parent, data, out) == 2
    finally:
        holder.close()
    for shard in ("2/2", "1", "a/3", "0/0"):
        assert score(tiny_bundle.parent, data, out, "--shard", shard) == 2
    assert out.read_bytes() == b""
    assert score(tiny_bundle.parent, data, out) == 0 and len(lines_of(out)) == 3


def test_shards_are_a_stable_hash_of_the_id() -> None:
    keys = [id_key(f"doc-{i}") for i in range(4000)] + [id_key(i) for i in range(4000)]
    counts = [0, 0, 0, 0]
    for key in keys:
        counts[shard_of(key, 4)] += 1
    assert all(abs(c - 2000) < 200 for c in counts)
    # Not Python's salted hash: fixed values, the same on every machine and run.
    # A changed hash would silently re-split running corpora: these values must never change.
    assert [shard_of(id_key(x), 1000) for x in ("doc-1", 1, "1")] == [195, 913, 521]
    assert id_key(1) != id_key("1")


def test_poison_values_the_reader_accepts_go_to_the_error_file_and_the_rest_is_scored(
    tiny_bundle: Path, tmp_path: Path
) -> None:
    """A lone surrogate, NaN or 1e400 in an id or an extra field: Python's JSON reader accepts
    them, the UTF-8 / strict JSON writer cannot; each is one error line, every other record is
    scored, and a rerun does not fail on them again."""
    good = corpus(4)
    poison = [
        '{"id": "\\ud800", "text": "x"}',
        '{"id": "p2", "text": "x", "extra": NaN}',
        '{"id": "p3", "text": "x", "big": 1e400}',
        '{"id": NaN, "text": "x"}',
        '{"id": "p5", "text": "x", "note": "\\udfff"}',
    ]
    data = write_jsonl(tmp_path / "in.jsonl", good, poison)
    out = tmp_path / "o.jsonl"
    assert score(tiny_bundle.parent, data, out) == 1
    assert sorted(r["id"] for r in lines_of(out)) == sorted(r["id"] for r in good)
    errors = lines_of(tmp_path / "o.jsonl.errors.jsonl")
    reasons = {e["line"]: e["reason"] for e in errors}
    assert sorted(reasons) == [5, 6, 7, 8, 9]
    assert "not valid Unicode" in reasons[5] and "not valid Unicode" in reasons[9]
    assert all("JSON output cannot carry" in reasons[n] for n in (6, 7, 8))
    assert errors[0]["id"] == '"\\ud800"'  # the bad id, spelled in ASCII JSON
    assert score(tiny_bundle.parent, data, out) == 1
    assert len(lines_of(out)) == 4


def test_an_output_that_is_not_a_regular_file_is_a_clear_error_exit(
    tiny_bundle: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    data = write_jsonl(tmp_path / "in.jsonl", corpus(2))
    started = time.monotonic()
    assert score(tiny_bundle.parent, data, Path("/dev/full")) == 2
    assert time.monotonic() - started < 30
    assert "/dev/full is not a regular file" in caplog.text


def test_a_chunk_tokenized_in_one_call_gives_the_items_of_one_by_one(
    tiny_bundle: Path, tiny_posture_bundle: Path
) -> None:
    """``prepare_many`` (one tokenizer call per chunk) yields what ``prepare`` yields per text,
    and a refused text still gets its own reason."""
    from service.batch.models import BadRecord, load_model

    texts = [r["text"] for r in corpus(40, seed=3, longest=200)] + ["", "dosa " * 5000]
    for bundle in (tiny_bundle, tiny_posture_bundle):
        model = load_model(Settings(bundles_dir=bundle.parent, models=[bundle.name]), bundle.name)
        many = model.prepare_many(texts)
        for text, got in zip(texts, many, strict=True):
            try:
                one: Any = model.prepare(text)
            except BadRecord as exc:
                assert isinstance(got, BadRecord) and str(got) == str(exc)
                continue
            assert not isinstance(got, BadRecord)
            assert (got.num_windows, got.width, got.tokens) == (
                one.num_windows,
                one.width,
                one.tokens,
            )
            assert model.run([got]) == model.run([one])


def test_chunks_start_small_and_double_up_to_the_chunk_size(tmp_path: Path) -> None:
    """The first chunk (whose tokenizing nothing overlaps) is short; every line comes once, in
    order, whatever the sizes."""
    from itertools import islice

    from service.batch.runner import _chunks, chunk_sizes

    assert list(islice(chunk_sizes(1024), 7)) == [64, 128, 256, 512, 1024, 1024, 1024]
    assert list(islice(chunk_sizes(100), 3)) == [64, 100, 100]
    assert list(islice(chunk_sizes(10), 2)) == [10, 10]
    data = tmp_path / "in.jsonl"
    data.write_bytes(b"".join(b"%d\n" % i for i in range(1000)))
    chunks = list(_chunks(data, 300))
    assert [len(c) for c in chunks] == [64, 128, 256, 300, 252]
    assert [n for c in chunks for n, _ in c] == list(range(1, 1001))
