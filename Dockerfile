# syntax=docker/dockerfile:1
# Serving image: ONNX Runtime + tokenizers + FastAPI only (no torch, no transformers, no compiler).
#
#   docker build -t nlp-inference .                                         # mount bundles at /models
#   docker build --build-arg BUNDLES=.cache/bundles -t nlp-inference .      # bake them in
#   docker run --read-only --tmpfs /tmp --cap-drop=ALL -p 8000:8000 nlp-inference
#
# BASE_IMAGE must provide python3 (>= 3.11) with the venv module; both stages use it so the
# virtual environment's interpreter path is the same in both. deploy/image_test.sh builds from a
# Debian rootfs made with debootstrap where Docker Hub is unreachable.
ARG BASE_IMAGE=python:3.11-slim

FROM ${BASE_IMAGE} AS build
# onnxruntime (CPU) or e.g. "onnxruntime-gpu[cuda,cudnn]" for the gpu variant (same Python module).
ARG ORT_PACKAGE=onnxruntime
# Optional packages on top of the serving stack, e.g. the OTLP trace exporter
# (docs/operating/observability.md):
# --build-arg EXTRA_PACKAGES=opentelemetry-exporter-otlp-proto-http
ARG EXTRA_PACKAGES=
# A package index mirror, passed through when the build host uses one (unset: PyPI).
ARG PIP_INDEX_URL
ARG PIP_EXTRA_INDEX_URL
ARG PIP_TRUSTED_HOST
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
COPY pyproject.toml README.md ./
# Only the serving packages: service/ and families/ (whose serving halves never import torch;
# their export.py modules are imported only by export/). export/ and default_models/ import torch
# and are not installed.
COPY service ./service
COPY families ./families
# `pip install .` installs exactly [project].dependencies: the serving stack. The export extra
# (torch, transformers) is never requested; the check below fails the build if it leaked in.
# A TLS-intercepting proxy's CA, if the build host needs one, comes in as a build secret
# (`--secret id=pip_ca,src=/etc/ssl/certs/ca-certificates.crt`): used by pip, never stored in a layer.
RUN --mount=type=secret,id=pip_ca \
    if [ -f /run/secrets/pip_ca ]; then export PIP_CERT=/run/secrets/pip_ca; fi \
 && python3 -m venv /opt/venv \
 && /opt/venv/bin/pip install --no-cache-dir . \
 && if [ -n "${EXTRA_PACKAGES}" ]; then \
      /opt/venv/bin/pip install --no-cache-dir ${EXTRA_PACKAGES}; \
    fi \
 && if [ "${ORT_PACKAGE}" != "onnxruntime" ]; then \
      /opt/venv/bin/pip uninstall --yes onnxruntime \
      && /opt/venv/bin/pip install --no-cache-dir "${ORT_PACKAGE}"; \
    fi \
 && /opt/venv/bin/python -c "import importlib.util as u, sys; \
bad = [m for m in ('torch', 'transformers', 'optimum') if u.find_spec(m)]; \
sys.exit(f'export packages in the serving venv: {bad}' if bad else 0)" \
 && /opt/venv/bin/python -m compileall -q /opt/venv

FROM ${BASE_IMAGE} AS runtime
# Bundles baked into /models: a directory of the build context (default: an empty placeholder,
# so /models is meant to be mounted).
ARG BUNDLES=deploy/no-bundles
LABEL org.opencontainers.image.title="nlp-inference" \
      org.opencontainers.image.description="ONNX Runtime NER and posture classification service" \
      org.opencontainers.image.licenses="Apache-2.0"
# Read-only root filesystem: everything that writes goes to /tmp (an emptyDir or tmpfs).
ENV PATH=/opt/venv/bin:${PATH} \
    HOME=/tmp \
    TMPDIR=/tmp \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    INFER_HOST=0.0.0.0 \
    INFER_PORT=8000 \
    INFER_BUNDLES_DIR=/models \
    INFER_GRPC_PORT=8001
COPY --from=build /opt/venv /opt/venv
COPY --chown=0:0 ${BUNDLES} /models
WORKDIR /tmp
# Numeric, so Kubernetes' runAsNonRoot can verify it without an /etc/passwd entry.
USER 10001:10001
# 8001: Open Inference Protocol over gRPC, with INFER_GRPC_ENABLED=true (off by default).
EXPOSE 8000 8001
# /readyz: healthy once every bundle is loaded and warmed up (python, as the image has no curl).
HEALTHCHECK --interval=15s --timeout=5s --start-period=180s --retries=3 \
    CMD ["python3", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('INFER_PORT', '8000') + '/readyz', timeout=4)"]
# Exec form: python is PID 1 and gets SIGTERM itself (uvicorn drains and exits 0).
CMD ["python3", "-m", "service"]
