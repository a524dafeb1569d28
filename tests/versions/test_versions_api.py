"""Versions side by side over HTTP: routing, pinning, the admin API (off by default, its own
keys), refused versions, unload under load, memory returned, the watch, shadow agreement."""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from prometheus_client import REGISTRY

from service.app import create_app
from service.bundle import BundleError
from service.settings import Settings
from service.versions.memory import rss_bytes
from tests.versions.bundles import publish_version

ADMIN = {"Authorization": "Bearer admin-key"}
QUIET: dict[str, Any] = {
    "shed_late_requests": False,
    "max_queue": 4096,
    "max_queue_tokens": 10**9,
    "max_tokenizing": 1024,
}


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


@pytest.fixture
def root(tiny_bundle: Path, tmp_path: Path) -> Path:
    publish_version(tiny_bundle, tmp_path, "1")
    publish_version(tiny_bundle, tmp_path, "2")
    return tmp_path


@contextmanager
def serving(root: Path, **settings: Any) -> Iterator[TestClient]:
    app = create_app(Settings(bundles_dir=root, **{**QUIET, **settings}))
    with TestClient(app) as client:
        deadline = time.monotonic() + 60
        while client.get("/readyz").status_code != 200:
            assert time.monotonic() < deadline, client.get("/readyz").json()
            time.sleep(0.05)
        yield client


def answered_by(client: TestClient, model: str = "tiny-ner", **headers: str) -> str:
    response = client.post("/v1/entities", json={"text": "a b c", "model": model}, headers=headers)
    assert response.status_code == 200, response.json()
    version: str = response.json()["model"]["version"]
    return version


def versions(client: TestClient) -> dict[str, dict[str, Any]]:
    listing = client.get("/v1/models").json()["versions"]
    return {v["version"]: v for v in listing if v["name"] == "tiny-ner"}


def test_the_highest_version_serves_and_a_pinned_one_answers_as_itself(root: Path) -> None:
    with serving(root) as client:
        assert {answered_by(client) for _ in range(10)} == {"2"}
        assert answered_by(client, "tiny-ner@1") == "1"
        missing = client.post("/v1/entities", json={"text": "a", "model": "tiny-ner@9"})
        assert missing.status_code == 404
        assert "no version '9'" in missing.json()["error"]["message"]
        assert "['1', '2']" in missing.json()["error"]["message"]
        listed = versions(client)
        assert listed["2"]["state"] == "ready" and listed["2"]["traffic_share"] == 1.0
        assert listed["2"]["role"] == "stable" and listed["1"]["role"] == "idle"
        cards = client.get("/v1/models").json()["models"]
        assert sorted((c["version"], c["state"]) for c in cards) == [("1", "ready"), ("2", "ready")]
        metrics = client.get("/metrics").text
        assert 'infer_model_traffic_share{model="tiny-ner",version="2"} 1.0' in metrics
        assert 'infer_model_version_info{model="tiny-ner",role="stable",version="2"} 1.0' in metrics
        assert 'infer_model_requests_total{model="tiny-ner",outcome="ok",version="1"}' in metrics


def test_two_bundles_with_the_same_name_and_version_are_refused(root: Path) -> None:
    shutil.copytree(root / "tiny-ner" / "2", root / "tiny-ner-copy")
    message = "two bundles are named 'tiny-ner' version '2'"
    with pytest.raises(BundleError, match=message), serving(root):
        pass


def test_the_admin_api_is_off_without_admin_keys_and_takes_only_its_own(root: Path) -> None:
    with serving(root) as client:
        assert client.get("/v1/admin/models", headers=ADMIN).status_code == 404
    with serving(root, api_keys=["inference-key"], admin_keys=["admin-key"]) as client:
        inference = {"Authorization": "Bearer inference-key"}
        refused = client.get("/v1/admin/models", headers=inference)
        assert refused.status_code == 401 and refused.json()["error"]["type"] == "unauthorized"
        assert client.get("/v1/admin/models").status_code == 401
        listing = client.get("/v1/admin/models", headers=ADMIN).json()["versions"]
        assert sorted(v["version"] for v in listing) == ["1", "2"]
        # inference auth is unchanged: the admin key is not an inference key
        body = {"text": "a"}
        assert client.post("/v1/entities", json=body, headers=ADMIN).status_code == 401
        assert client.post("/v1/entities", json=body, headers=inference).status_code == 200


def test_weights_route_traffic_and_bad_policies_name_the_field(root: Path) -> None:
    with serving(root, admin_keys=["admin-key"]) as client:
        url = "/v1/admin/models/tiny-ner/routing"
        bad = client.put(url, json={"weights": {"1": 1, "7": 1}}, headers=ADMIN)
        assert bad.status_code == 422 and bad.json()["error"]["field"] == "weights.7"
        fraction = client.put(url, json={"shadow": {"version": "1", "fraction": 2}}, headers=ADMIN)
        assert fraction.status_code == 422
        ok = client.put(url, json={"weights": {"1": 90, "2": 10}}, headers=ADMIN)
        assert ok.status_code == 200
        shares = {v["version"]: v["traffic_share"] for v in ok.json()["versions"]}
        assert shares == {"1": 0.9, "2": 0.1}
        picks = [answered_by(client) for _ in range(300)]
        assert 0.03 < picks.count("2") / len(picks) < 0.2
        sticky = {"weights": {"1": 50, "2": 50}, "sticky_header": "x-caller-id"}
        assert client.put(url, json=sticky, headers=ADMIN).status_code == 200
        for caller in ("alice", "bob", "carol", "dave"):
            seen = {answered_by(client, **{"x-caller-id": caller}) for _ in range(8)}
            assert len(seen) == 1, (caller, seen)


def test_a_corrupted_version_is_refused_with_its_reason_while_the_old_keeps_serving(
    root: Path, tiny_bundle: Path
) -> None:
    with serving(root, admin_keys=["admin-key"]) as client:
        before = sample("infer_model_load_failures_total", model="tiny-ner", version="3",
                        reason="sha256")  # fmt: skip
        publish_version(tiny_bundle, root, "3", breakage="sha256")
        url = "/v1/admin/models/tiny-ner/versions/3:load?wait=true"
        state = client.post(url, headers=ADMIN).json()
        assert state["state"] == "failed" and "sha256" in state["reason"]
        assert sample("infer_model_load_failures_total", model="tiny-ner", version="3",
                      reason="sha256") == before + 1  # fmt: skip
        shutil.rmtree(root / "tiny-ner" / "3")
        publish_version(tiny_bundle, root, "3", breakage="selfcheck")
        state = client.post(url, headers=ADMIN).json()
        assert state["state"] == "failed" and "self-check failed" in state["reason"]
        assert versions(client)["3"]["reason"] == state["reason"]
        assert {answered_by(client) for _ in range(10)} == {"2"}
        assert client.get("/readyz").status_code == 200
        pinned = client.post("/v1/entities", json={"text": "a", "model": "tiny-ner@3"})
        assert pinned.status_code == 404


def test_unloading_under_load_loses_no_request_and_returns_the_memory(
    root: Path, tiny_bundle: Path
) -> None:
    with serving(root, admin_keys=["admin-key"]) as client:
        url = "/v1/admin/models/tiny-ner"
        client.put(f"{url}/routing", json={"weights": {"1": 50, "2": 50}}, headers=ADMIN)
        statuses: list[int] = []
        answered: list[str] = []
        stop = threading.Event()

        def load() -> None:
            while not stop.is_set():
                r = client.post("/v1/entities", json={"text": "a b c", "model": "tiny-ner"})
                statuses.append(r.status_code)
                if r.status_code == 200:
                    answered.append(r.json()["model"]["version"])

        workers = [threading.Thread(target=load) for _ in range(4)]
        for w in workers:
            w.start()
        time.sleep(0.5)
        unloaded = client.post(f"{url}/versions/1:unload", headers=ADMIN)
        time.sleep(0.3)
        stop.set()
        for w in workers:
            w.join()
        assert unloaded.status_code == 200, unloaded.json()
        assert statuses and set(statuses) == {200}
        assert "1" in answered and answered[-1] == "2"
        assert "1" not in versions(client)
        refused = client.post(f"{url}/versions/2:unload", headers=ADMIN)
        assert refused.status_code == 409  # the only ready version
        # memory: a third version loaded and unloaded gives its resident memory back
        publish_version(tiny_bundle, root, "3")
        before = rss_bytes()
        loaded = client.post(f"{url}/versions/3:load?wait=true", headers=ADMIN).json()
        assert loaded["state"] == "ready"
        client.post(f"{url}/versions/3:unload", headers=ADMIN)
        after = rss_bytes()
        assert after <= before * 1.10, (before, after)


def test_the_watch_swaps_versions_and_readyz_stays_ready(root: Path, tiny_bundle: Path) -> None:
    shutil.rmtree(root / "tiny-ner" / "2")
    with serving(root, watch=True, watch_interval_s=0.1) as client:
        assert answered_by(client) == "1"
        publish_version(tiny_bundle, root, "2")
        deadline = time.monotonic() + 30
        seen: list[str] = []
        while time.monotonic() < deadline and (not seen or seen[-1] != "2"):
            assert client.get("/readyz").status_code == 200
            seen.append(answered_by(client))
        assert seen[-1] == "2"
        assert seen == sorted(seen)  # never back to 1 once 2 answered
        shutil.rmtree(root / "tiny-ner" / "1")
        while time.monotonic() < deadline and "1" in versions(client):
            time.sleep(0.05)
        assert list(versions(client)) == ["2"]
        assert client.get("/readyz").status_code == 200


def test_shadow_copies_are_compared_and_never_answered(root: Path) -> None:
    routing = {"tiny-ner": {"shadow": {"version": "1", "fraction": 1.0}}}
    with serving(root, routing=routing) as client:
        labels = {"model": "tiny-ner", "version": "1", "outcome": "agree"}
        before = sample("infer_shadow_comparisons_total", **labels)
        assert {answered_by(client) for _ in range(20)} == {"2"}
        deadline = time.monotonic() + 10
        while sample("infer_shadow_comparisons_total", **labels) < before + 20:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert versions(client)["1"]["role"] == "shadow"


def test_a_load_over_the_memory_limit_is_refused_with_its_reason(
    root: Path, tiny_bundle: Path
) -> None:
    with serving(root, admin_keys=["admin-key"]) as client:
        registry = client.app.state.registry  # type: ignore[attr-defined]
        registry.settings.max_model_memory_mb = 1  # below the 4.6 MB of a tiny bundle's files
        publish_version(tiny_bundle, root, "3")
        url = "/v1/admin/models/tiny-ner/versions/3:load?wait=true"
        state = client.post(url, headers=ADMIN).json()
        assert state["state"] == "failed"
        assert "over the model memory limit of 1 MB (INFER_MAX_MODEL_MEMORY_MB)" in state["reason"]
        labels = {"model": "tiny-ner", "version": "3", "reason": "memory"}
        assert sample("infer_model_load_failures_total", **labels) >= 1
        assert {answered_by(client) for _ in range(5)} == {"2"}


def test_a_routing_setting_naming_an_unknown_version_stops_start_up(root: Path) -> None:
    routing = {"tiny-ner": {"weights": {"1": 1, "5": 1}}}
    with (
        pytest.raises(BundleError, match=r"INFER_ROUTING.tiny-ner.weights.5"),
        serving(root, routing=routing),
    ):
        pass


def test_v2_model_versions_pin_a_version(root: Path) -> None:
    body = {"inputs": [{"name": "text", "datatype": "BYTES", "shape": [1], "data": ["a b c"]}]}
    with serving(root) as client:
        assert client.get("/v2/models/tiny-ner").json()["versions"] == ["1", "2"]
        assert client.get("/v2/models/tiny-ner/versions/1").json()["versions"] == ["1"]
        assert client.get("/v2/models/tiny-ner/versions/1/ready").status_code == 200
        assert client.get("/v2/models/tiny-ner/versions/9/ready").status_code == 404
        pinned = client.post("/v2/models/tiny-ner/versions/1/infer", json=body)
        assert pinned.status_code == 200, pinned.text
        assert pinned.json()["model_version"] == "1"
        routed = client.post("/v2/models/tiny-ner/infer", json=body)
        assert routed.json()["model_version"] == "2"


def test_a_loading_version_goes_through_its_states_in_order(
    root: Path, tiny_bundle: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from service.versions.group import VersionGroup

    seen: list[str] = []
    refresh = VersionGroup.refresh

    def recording(self: VersionGroup) -> None:
        model = self.versions.get("3")
        if model is not None and (not seen or seen[-1] != model.state):
            seen.append(model.state)
        refresh(self)

    with serving(root, admin_keys=["admin-key"]) as client:
        monkeypatch.setattr(VersionGroup, "refresh", recording)
        publish_version(tiny_bundle, root, "3")
        url = "/v1/admin/models/tiny-ner/versions/3"
        assert client.post(f"{url}:load?wait=true", headers=ADMIN).json()["state"] == "ready"
        assert client.post(f"{url}:unload", headers=ADMIN).status_code == 200
    assert seen == ["loading", "self_checking", "warming", "ready", "draining"]


def test_a_load_path_outside_the_bundles_directory_is_refused(root: Path) -> None:
    with serving(root, admin_keys=["admin-key"]) as client:
        url = "/v1/admin/models/tiny-ner/versions/3:load"
        for path in ("../elsewhere", "/etc", "."):
            refused = client.post(url, json={"path": path}, headers=ADMIN)
            assert refused.status_code == 422, (path, refused.text)
            assert refused.json()["error"]["field"] == "path"
        wrong = client.post(url, json={"path": "tiny-ner/2"}, headers=ADMIN)  # holds version 2
        assert wrong.status_code == 422 and "tiny-ner@2, not tiny-ner@3" in wrong.text
        assert client.post(url, headers=ADMIN).status_code == 404  # no directory holds 3


def test_a_new_model_whose_only_version_fails_leaves_the_replica_ready(
    root: Path, tiny_bundle: Path
) -> None:
    with serving(root, admin_keys=["admin-key"]) as client:
        other = root / "other"
        shutil.copytree(tiny_bundle, other)
        manifest = other / "bundle.json"
        manifest.write_text(manifest.read_text().replace('"tiny-ner"', '"other-ner"', 1))
        with (other / "model.onnx").open("ab") as f:
            f.write(b"corrupted")
        url = "/v1/admin/models/other-ner/versions/1:load?wait=true"
        state = client.post(url, headers=ADMIN).json()
        assert state["state"] == "failed" and "sha256" in state["reason"]
        assert client.get("/readyz").status_code == 200
        assert answered_by(client) == "2"
        unnamed = client.post("/v1/entities", json={"text": "a b c"})  # not made ambiguous
        assert unnamed.status_code == 200 and unnamed.json()["model"]["name"] == "tiny-ner"
