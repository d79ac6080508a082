# exemplar: `make run` and `make test` set everything up on a fresh machine (Python 3.11 + git).
SHELL := /bin/bash
.SHELLFLAGS := -eo pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
PREFECT_SEED := $(VENV)/share/exemplar/prefect-seed/prefect-version.txt
ARGS ?=
PYTEST_ARGS ?=

# glibc's default allocator turns large batched tensor passes into page-fault work (see docs/performance.md).
export MALLOC_MMAP_THRESHOLD_ := 4294967296
export MALLOC_TRIM_THRESHOLD_ := 68719476736
# Idle OpenMP threads sleep instead of spinning: spinning made training several times slower on a busy 2-core machine.
export OMP_WAIT_POLICY ?= PASSIVE

.PHONY: help setup run test test-slow params dvc-repro mlflow-ui mlflow-server bench clean

help:
	@echo "make run     - set up .venv if needed, then run the whole pipeline on the embedded digits data"
	@echo "make test    - set up .venv if needed, then run the test suite (slow quality tests excluded)"
	@echo "make setup   - create or update .venv (no-op when nothing changed)"
	@echo "make params  - regenerate params.yaml from conf/ (DVC reads it)"
	@echo "make mlflow-server - a team MLflow server on 127.0.0.1:$(MLFLOW_PORT) (SQLite + local artifacts in $(MLFLOW_DIR))"
	@echo "make test-slow, make bench, make mlflow-ui, make dvc-repro, make clean"

$(STAMP): pyproject.toml constraints.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	@echo "installing exemplar and its pinned dependencies into $(VENV) (about 2 minutes the first time)"
	@$(PY) -m pip install -q --disable-pip-version-check -c constraints.txt -e ".[test,dask]" 2>&1 \
		| { grep -v "is ignored: it is neither a file nor a directory" || true; }
	@touch $(STAMP)

# A migrated Prefect database that fresh Prefect homes start from (flows/prefect_seed.py): saves 4-5 s per fresh home.
$(PREFECT_SEED): $(STAMP)
	@$(PY) -m flows.prefect_seed

setup: $(STAMP) $(PREFECT_SEED)

run: setup
	$(PY) -m flows.pipeline $(ARGS)

test: setup
	$(PY) -m pytest -m "not slow" --durations=15 $(PYTEST_ARGS)

test-slow: setup
	$(PY) -m pytest -m slow $(PYTEST_ARGS)

params: setup
	$(PY) -m flows.params

dvc-repro: setup
	PATH="$(abspath $(VENV))/bin:$$PATH" dvc repro

mlflow-ui: setup
	MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false $(VENV)/bin/mlflow ui --backend-store-uri sqlite:///$(abspath mlflow.db) --host 127.0.0.1 --workers 1

# A tracking server for several users/processes: SQLite backend, artifacts served from a local folder.
# Point runs at it with MLFLOW_TRACKING_URI=http://127.0.0.1:$(MLFLOW_PORT). The job runner is off: it takes
# 20+ s to start and leaves consumers behind on SIGTERM (see docs/operations.md).
MLFLOW_PORT ?= 5000
MLFLOW_DIR ?= mlflow-server
mlflow-server: setup
	@mkdir -p $(MLFLOW_DIR)/artifacts
	MLFLOW_SERVER_ENABLE_JOB_EXECUTION=false $(VENV)/bin/mlflow server --host 127.0.0.1 --port $(MLFLOW_PORT) --workers 1 \
		--backend-store-uri sqlite:///$(abspath $(MLFLOW_DIR))/mlflow.db \
		--artifacts-destination $(abspath $(MLFLOW_DIR))/artifacts --serve-artifacts

bench: setup
	$(PY) benchmarks/run_all.py

clean:
	rm -rf runs artifacts .prefect mlflow.db mlflow-server .pytest_cache
