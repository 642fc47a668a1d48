# One-command entry points. Every target bootstraps .venv from nothing.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: venv test lint demo stop bench chaos e2e clean lowest

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --disable-pip-version-check uv
	$(VENV)/bin/uv pip install -q --python $(PY) -e '.[dev]'
	@touch $(STAMP)

venv: $(STAMP)

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check dags include scripts tests

test: venv
	$(VENV)/bin/ruff check .
	$(PY) -m pytest

demo: venv
	$(PY) scripts/demo.py

# Long (not in `make test`): payout_batch under a real scheduler against a bare HTTP client, one
# sandbox; writes BENCHMARKS.md and prints "bench: N payouts, bare B s, dag D s, ratio Rx, calls C a
# payout" per size. BENCH_SIZES=1000,10000,100000 adds the long size.
bench: venv
	$(PY) scripts/bench.py

# Long (not in `make test`): payout_batch under a real scheduler with faults, a SIGKILL and a
# gateway restart; prints "chaos: N rows, F faults injected, D duplicates, L lost, M report mismatches".
chaos: venv
	$(PY) scripts/chaos.py

# Not in `make test` (~2.5 min): the lowest versions pyproject.toml allows (uv --resolution
# lowest-direct) in .venv-lowest, then the provider tests. A failure means a floor is too low.
lowest:
	bash scripts/lowest.sh

# Long (not in `make test`): a real browser (Debian's Chromium, installed here when missing) through
# the operator's steps against a demo of its own on free ports (var/e2e/demo, stopped at the end);
# screenshots in var/e2e/; prints "e2e: 8 steps, P passed, F failed".
CHROMIUM ?= /usr/bin/chromium
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
e2e: venv
	@test -x $(CHROMIUM) || { $(SUDO) apt-get update && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y chromium; }
	$(VENV)/bin/uv pip install -q --python $(PY) -e '.[dev,e2e]'
	E2E_CHROMIUM=$(CHROMIUM) $(PY) scripts/e2e.py

stop:
	@$(PYTHON) scripts/stop.py

clean: stop
	rm -rf var

# The Celery topology without containers (PostgreSQL, Redis, 2 workers...), proven on 1,000 rows.
.PHONY: cluster-check
cluster-check: venv
	$(VENV)/bin/uv pip install -q --python $(PY) -e '.[dev,cluster]'
	$(PY) scripts/cluster_check.py
