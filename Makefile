# tagstream — every target creates .venv and installs what it needs on first use.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
LOCAL_DATA := data/madewithml-dataset.csv
SHARED_DATA := ../shared/datasets/madewithml-dataset.csv

# Offline machines: use the local copy of the dataset when there is one.
ifeq ($(origin TAGSTREAM_DATA_LOCATION),undefined)
  ifneq ($(wildcard $(LOCAL_DATA)),)
    export TAGSTREAM_DATA_LOCATION := $(LOCAL_DATA)
  endif
endif

.DEFAULT_GOAL := help
.PHONY: help run test lint unit integration bench format data clean

help: ## Show this help
	@awk 'BEGIN {FS = ":.*## "} /^[a-z-]+:.*## / {printf "  \033[36m%-12s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

data: ## Copy the dataset from ../shared/datasets into data/ (offline machines)
	@mkdir -p data
	@if [ -f $(SHARED_DATA) ]; then cp $(SHARED_DATA) $(LOCAL_DATA) && echo "copied $(LOCAL_DATA)"; \
	else echo "no $(SHARED_DATA); the public URL is used"; fi

run: $(STAMP) ## Run tagstream locally: a model if none is stable, then broker, ingest, classifier
	$(BIN)/tagstream db upgrade
	$(BIN)/tagstream model ensure
	$(BIN)/tagstream up

test: $(STAMP) lint unit integration ## Lint, then unit tests, then integration tests

lint: $(STAMP) ## ruff and mypy
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

unit: $(STAMP) ## Fast tests (no real dataset training)
	$(BIN)/pytest -m "not slow" -q

integration: $(STAMP) ## Slow tests: training on the real dataset end to end
	$(BIN)/pytest -m "slow" -q

bench: $(STAMP) ## Benchmarks (inference, classifier throughput, end-to-end latency) -> bench-results/
	$(BIN)/python -m tests.bench.bench_inference --out bench-results
	$(BIN)/python -m tests.bench.bench_classifier --out bench-results
	$(BIN)/python -m tests.bench.bench_e2e --out bench-results

format: $(STAMP) ## Apply ruff fixes and formatting
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

clean: ## Remove the virtualenv, caches, local registry and database
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache bench-results test-artifacts
