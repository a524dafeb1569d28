"""How bundles reach the pods when model versions change (docs/deployment/model-versions.md): a
shared read-only volume hot-swapped in place (overlays/models-pvc + jobs/publish-model), a
bundles image copied by an init container (overlays/models-image), and the Kubernetes-native
canary (overlays/canary: a second Deployment, the split at ingress-nginx). The generic policies
(restricted pods, probes, selectors, real settings) run on these overlays in test_manifests.py."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.deploy.test_manifests import config_of, of_kind, render

Doc = dict[str, Any]


def server(docs: tuple[Doc, ...], name: str = "nlp-inference") -> tuple[Doc, Doc]:
    (deploy,) = [d for d in of_kind(docs, "Deployment") if d["metadata"]["name"] == name]
    pod = deploy["spec"]["template"]["spec"]
    return pod, pod["containers"][0]


def models_volume(pod: Doc, container: Doc) -> tuple[Doc, Doc]:
    (mount,) = [m for m in container["volumeMounts"] if m["mountPath"] == "/models"]
    (volume,) = [v for v in pod["volumes"] if v["name"] == mount["name"]]
    return mount, volume


def quantity_mi(text: str) -> float:
    units = {"Mi": 1.0, "Gi": 1024.0}
    return float(text[:-2]) * units[text[-2:]]


# --- shared volume, hot swap in place -------------------------------------------------------------


def test_pvc_overlay_mounts_the_claim_read_only_and_watches_it() -> None:
    docs = render("overlays/models-pvc")
    pod, c = server(docs)
    mount, volume = models_volume(pod, c)
    assert mount["readOnly"] is True and volume["persistentVolumeClaim"]["readOnly"] is True
    (pvc,) = of_kind(docs, "PersistentVolumeClaim")
    assert volume["persistentVolumeClaim"]["claimName"] == pvc["metadata"]["name"]
    assert "ReadWriteMany" in pvc["spec"]["accessModes"]  # pods on any node, and the publisher
    config = config_of(docs, c)
    assert config["INFER_WATCH"] == "true" and config["INFER_BUNDLES_DIR"] == "/models"


def publish_job() -> tuple[Doc, Doc]:
    (job,) = of_kind(render("jobs/publish-model"), "Job")
    (container,) = job["spec"]["template"]["spec"]["containers"]
    return job, container


def test_publish_job_writes_the_claim_the_servers_read() -> None:
    from tests.deploy.test_manifests import assert_restricted

    job, c = publish_job()
    pod = job["spec"]["template"]["spec"]
    assert_restricted(pod)
    mount, volume = models_volume(pod, c)
    assert not mount.get("readOnly")
    (pvc,) = of_kind(render("overlays/models-pvc"), "PersistentVolumeClaim")
    assert volume["persistentVolumeClaim"]["claimName"] == pvc["metadata"]["name"]


def run_publish(
    tmp_path: Path, version: str, manifest_version: str
) -> subprocess.CompletedProcess[str]:
    """The Job's own script, run by sh here with /models and /bundle moved under tmp_path."""
    _, c = publish_job()
    assert c["command"] == ["sh", "-euc"]
    script = re.sub(r'(?<=[\s"])/models\b', str(tmp_path / "models"), c["args"][0])
    script = re.sub(r'(?<=[\s"])/bundle\b', str(tmp_path / "bundle"), script)
    bundle = tmp_path / "bundle"
    bundle.mkdir(exist_ok=True)
    (bundle / "model.onnx").write_bytes(b"graph")
    manifest = {"name": "ner-food", "version": manifest_version, "onnx": {"file": "model.onnx"}}
    (bundle / "bundle.json").write_text(json.dumps(manifest, indent=2))
    (tmp_path / "models").mkdir(exist_ok=True)
    env = {e["name"]: e["value"] for e in c["env"]} | {
        "MODEL_VERSION": version,
        "PATH": "/usr/bin:/bin",
    }
    return subprocess.run(
        ["sh", "-euc", script], env=env, capture_output=True, text=True, timeout=30
    )


def test_publish_script_renames_a_complete_version_into_place_once(tmp_path: Path) -> None:
    done = run_publish(tmp_path, "2", "2")
    assert done.returncode == 0, done.stderr
    final = tmp_path / "models" / "ner-food" / "2"
    assert json.loads((final / "bundle.json").read_text())["version"] == "2"
    assert (final / "model.onnx").read_bytes() == b"graph"
    assert not [p.name for p in (tmp_path / "models").iterdir() if p.name.startswith(".")]
    again = run_publish(tmp_path, "2", "2")
    assert again.returncode == 2 and "exists" in again.stderr  # never overwritten in place
    wrong = run_publish(tmp_path, "3", "2")
    assert wrong.returncode == 2 and "version 3" in wrong.stderr
    assert not (tmp_path / "models" / "ner-food" / "3").exists()


# --- bundles image, copied at pod start ----------------------------------------------------------


def test_image_overlay_copies_the_bundles_image_into_a_read_only_mount() -> None:
    docs = render("overlays/models-image")
    pod, c = server(docs)
    mount, volume = models_volume(pod, c)
    assert mount["readOnly"] is True and "emptyDir" in volume
    (init,) = pod["initContainers"]
    assert init["image"].startswith("nlp-inference-bundles:")
    assert init["command"] == ["cp", "-R", "/bundles/.", "/models/"]
    assert {m["mountPath"]: m["name"] for m in init["volumeMounts"]}["/models"] == volume["name"]
    # the copied bundles count against the pod's ephemeral storage
    scratch = sum(
        quantity_mi(v["emptyDir"]["sizeLimit"]) for v in pod["volumes"] if "emptyDir" in v
    )
    assert quantity_mi(c["resources"]["limits"]["ephemeral-storage"]) >= scratch
    assert config_of(docs, c)["INFER_WATCH"] == "true"


# --- Kubernetes-native canary --------------------------------------------------------------------


def backend(ingress: Doc) -> str:
    (rule,) = ingress["spec"]["rules"]
    (path,) = rule["http"]["paths"]
    name: str = path["backend"]["service"]["name"]
    return name


def test_canary_overlay_is_a_second_release_behind_a_weighted_ingress() -> None:
    docs = render("overlays/canary")
    deployments = {d["metadata"]["name"]: d for d in of_kind(docs, "Deployment")}
    assert set(deployments) == {"nlp-inference-stable", "nlp-inference-canary"}
    images = {n: server(docs, n)[1]["image"] for n in deployments}
    assert images["nlp-inference-stable"] != images["nlp-inference-canary"]
    for name in deployments:  # every reference resolved to its own release
        (hpa,) = [
            h for h in of_kind(docs, "HorizontalPodAutoscaler") if h["metadata"]["name"] == name
        ]
        assert hpa["spec"]["scaleTargetRef"]["name"] == name
    ingresses = {i["metadata"]["name"]: i for i in of_kind(docs, "Ingress")}
    stable, canary = ingresses["nlp-inference-stable"], ingresses["nlp-inference-canary"]
    services = {s["metadata"]["name"] for s in of_kind(docs, "Service")}
    assert backend(stable) == "nlp-inference-stable" and backend(canary) == "nlp-inference-canary"
    assert {backend(stable), backend(canary)} <= services
    annotations = canary["metadata"]["annotations"]
    assert annotations["nginx.ingress.kubernetes.io/canary"] == "true"
    assert 0 <= int(annotations["nginx.ingress.kubernetes.io/canary-weight"]) <= 100
    assert "nginx.ingress.kubernetes.io/canary" not in stable["metadata"].get("annotations", {})
    # ingress-nginx matches a canary to the main Ingress by host and path
    assert stable["spec"]["rules"][0]["host"] == canary["spec"]["rules"][0]["host"]
    assert stable["spec"]["ingressClassName"] == canary["spec"]["ingressClassName"] == "nginx"


@pytest.mark.parametrize("name", ["nlp-inference-stable", "nlp-inference-canary"])
def test_canary_overlay_lets_the_ingress_controller_reach_both_releases(name: str) -> None:
    (netpol,) = [
        n
        for n in of_kind(render("overlays/canary"), "NetworkPolicy")
        if n["metadata"]["name"] == name
    ]
    sources = [s for rule in netpol["spec"]["ingress"] for s in rule["from"]]
    namespaces = {
        s["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"]
        for s in sources
        if "namespaceSelector" in s
    }
    assert "ingress-nginx" in namespaces
