# Two commands for a fresh clone: `make train` (the main job) and `make test`.
# Each runs `setup` first, which is idempotent: a .venv made with pip, ipguard installed
# editable with its dev extra; it reinstalls only when pyproject.toml changes.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.ipguard-setup
export NO_ALBUMENTATIONS_UPDATE := 1
export PYTHONUNBUFFERED := 1

.PHONY: setup train serve test test-fast lint format bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

## the main job: train on the demo data (generated on first use) and register a model.
## MODEL: the fused listing model by default, the one screening services load
## (models:/ipguard-listing@champion); MODEL=image | text_tfidf | ... for another.
MODEL ?= fusion
train: setup
	$(VENV)/bin/ipguard-train model=$(MODEL) $(ARGS)

## serve the model `make train` registered over REST on 127.0.0.1 (Ctrl-C stops it);
## MODEL_URI= another version or alias, PORT= another port
MODEL_URI ?= models:/ipguard-listing@champion
PORT ?= 5001
serve: setup
	$(VENV)/bin/ipguard-serve model_uri=$(MODEL_URI) port=$(PORT)

## the whole test suite, slow tests included (CI runs this)
test: setup
	$(PY) -m pytest $(PYTEST_ARGS)

## everything but the tests marked slow
test-fast: setup
	$(PY) -m pytest -m "not slow" $(PYTEST_ARGS)

lint: setup
	$(VENV)/bin/ruff check src tests benchmarks scripts
	$(VENV)/bin/ruff format --check src tests benchmarks scripts
	$(VENV)/bin/lint-imports  # the import rules between packages ([tool.importlinter])

format: setup
	$(VENV)/bin/ruff check --fix src tests benchmarks scripts
	$(VENV)/bin/ruff format src tests benchmarks scripts

clean:
	rm -rf runs multiruns mlartifacts mlflow.db data/demo data/demo-small cache .pytest_cache
