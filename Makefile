# ARCHS4 warehouse: every command creates and uses .venv/ and installs what is missing.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export DAGSTER_HOME ?= $(CURDIR)/.dagster
export ARCHS4_WAREHOUSE ?= $(CURDIR)/warehouse
export ARCHS4_LOG_DIR ?= $(CURDIR)/logs

.PHONY: install run rebuild test ui update bench rehearsal lint format chromium clean

install: $(STAMP)

# torch first: `torch==2.13.0` resolves to the local CPU wheel; any other spec pulls CUDA builds.
$(STAMP): pyproject.toml constraints.txt
	@command -v $(PYTHON) >/dev/null || { echo "need $(PYTHON)"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[dev]"
	touch $(STAMP)

$(DAGSTER_HOME):
	@mkdir -p $(DAGSTER_HOME)
	@test -f $(DAGSTER_HOME)/dagster.yaml || cp dagster.yaml $(DAGSTER_HOME)/dagster.yaml

# The headless commands print one line on failure; the detail goes to a log in ARCHS4_LOG_DIR.
# RUN_FLAGS=--quiet drops the progress lines.
RUN_FLAGS ?=
run: install | $(DAGSTER_HOME)
	@$(BIN)/python -m dagster_project.headless run $(RUN_FLAGS)

test: install chromium
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python -m pytest

# Recompute everything, the fitted assets (target, splits, models) too.
rebuild: install | $(DAGSTER_HOME)
	@$(BIN)/python -m dagster_project.headless run --rebuild $(RUN_FLAGS)

update: install | $(DAGSTER_HOME)
	@$(BIN)/python -m dagster_project.headless update $(RUN_FLAGS)

ui: install | $(DAGSTER_HOME)
	$(BIN)/dagster dev -h 127.0.0.1 -p 3000

bench: install
	$(BIN)/python -m benchmarks.run

# The real `make run` on a generated 50,000 x 60,000 release (over 2 h on 2 cores; REHEARSAL_FLAGS=--resume
# continues an interrupted one, ~35 GB of disk
# while it runs); writes benchmarks/results/rehearsal.json, then removes what it generated.
rehearsal: install
	$(BIN)/python -m benchmarks.rehearsal $(REHEARSAL_FLAGS)

# The browser test drives Debian's Chromium (never a browser a tool downloads itself).
chromium:
	@command -v chromium >/dev/null || { \
		if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq chromium; \
		else sudo -n apt-get update -qq && sudo -n apt-get install -y -qq chromium; fi; }

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/dg check defs

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

clean:
	rm -rf warehouse .dagster data/demo logs
