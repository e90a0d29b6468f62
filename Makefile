# Tailor's entry points. `make run` and `make test` do all the set-up.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
REQUIREMENTS := requirements/web.txt requirements/ml.txt requirements/test.txt
# PostgreSQL for the second test pass; CI has one on 127.0.0.1:5432.
TEST_POSTGRES_URL ?= postgres://postgres@127.0.0.1:5432/tailor

.PHONY: run test test-fast test-faults test-sqlite test-postgres lint format venv system-deps clean gpu-check bench

$(STAMP): $(REQUIREMENTS)
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	# torch first and alone: the CPU wheel pinned here, before anything that
	# depends on torch can pull a CUDA build.
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -r requirements/test.txt
	@touch $(STAMP)

venv: $(STAMP)

run: $(STAMP)
	$(PY) -m studio.launcher

# Chromium for the browser tests and docker-compose to validate the compose
# file: Debian packages, installed when missing and when we may (root).
system-deps:
	@missing=""; \
	test -x /usr/bin/chromium || missing="$$missing chromium"; \
	command -v docker-compose >/dev/null || missing="$$missing docker-compose"; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "Installing$$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	  else \
	    echo "Please install:$$missing (e.g. sudo apt-get install$$missing)"; exit 1; \
	  fi; \
	fi

test: $(STAMP) system-deps
	$(MAKE) --no-print-directory test-sqlite
	$(MAKE) --no-print-directory test-postgres

# The inner loop: no browser, no worker or server, no real training, no killed
# processes (SQLite); markers follow from the fixtures a test uses (conftest).
test-fast: $(STAMP)
	env -u DATABASE_URL $(PY) -m pytest -q -m "not integration and not browser and not training and not faults"

# Issue 12's fault tests alone: real workers killed, paused, starved (SQLite).
test-faults: $(STAMP)
	env -u DATABASE_URL $(PY) -m pytest -q -m faults

test-sqlite: $(STAMP)
	@echo "== test suite on SQLite =="
	env -u DATABASE_URL $(PY) -m pytest

test-postgres: $(STAMP)
	@if $(PY) -c "import psycopg,sys; psycopg.connect('$(TEST_POSTGRES_URL)'.replace('/tailor','/postgres'), connect_timeout=3).close()" 2>/dev/null; then \
	  echo "== tests that use the database, on PostgreSQL ($(TEST_POSTGRES_URL)) =="; \
	  DATABASE_URL=$(TEST_POSTGRES_URL) TAILOR_TESTS_DATABASE_ONLY=1 $(PY) -m pytest; \
	elif [ "$$CI" = "true" ]; then \
	  echo "CI needs PostgreSQL at $(TEST_POSTGRES_URL) for the second test pass, and none answers."; exit 1; \
	else \
	  echo "== PostgreSQL pass not run: nothing answers at $(TEST_POSTGRES_URL) (set TEST_POSTGRES_URL) =="; \
	fi

# On a CUDA machine: a QLoRA job on a generated ~100M model, with tokens/s
# and peak GPU memory.
gpu-check: $(STAMP)
	$(PY) scripts/gpu_check.py

# The benchmarks (figures printed, not asserted; see bench/README.md).
bench: $(STAMP)
	$(PY) bench/datasets_validate.py
	$(PY) bench/train_overhead.py
	$(PY) bench/serving.py
	$(PY) bench/load.py

lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

format: $(STAMP)
	$(PY) -m ruff check --fix .
	$(PY) -m ruff format .

clean:
	rm -rf $(VENV) var/test-* .pytest_cache .ruff_cache
