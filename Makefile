# Fieldforce: `make run` starts the whole product, `make test` checks everything.
PY ?= python3
VENV := .venv
UV := $(VENV)/bin/uv
PYTHON := $(VENV)/bin/python
export UV_PYTHON := $(abspath $(PYTHON))
PACKAGES := libs/servicekit/servicekit gateway/gateway services/customers/customers \
	services/visits/visits services/opportunities/opportunities services/analytics/analytics \
	fieldforce

.PHONY: help bootstrap run migrate test lint types pytest bench demo

help:
	@echo "make run      start PostgreSQL, migrate, start the gateway and the four services"
	@echo "make test     lint, types and the full test suite on a throwaway PostgreSQL"
	@echo "make bench    the benchmarks in bench/, each against its baseline"
	@echo "make migrate  bring every schema to head"
	@echo "make demo     fill a running stack with demo data through the public API"

$(UV):
	$(PY) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --disable-pip-version-check uv

bootstrap: $(UV)
	$(UV) sync --frozen --quiet

run: bootstrap
	$(PYTHON) -m fieldforce.cli run

migrate: bootstrap
	$(PYTHON) -m fieldforce.cli migrate

lint: bootstrap
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

# Each app's own tests, checked one folder at a time: to mypy they are all packages `tests`.
APP_TESTS := $(patsubst %/,%,$(sort $(dir $(wildcard libs/*/tests/test_*.py gateway/tests/test_*.py services/*/tests/test_*.py))))

types: bootstrap
	$(VENV)/bin/mypy $(PACKAGES) tests bench
	set -e; for dir in $(APP_TESTS); do $(VENV)/bin/mypy $$dir; done

# Test workers: one per core, at most four (each runs its own PostgreSQL and servers);
# `make test TEST_WORKERS=0` runs the suite in one process.
TEST_WORKERS ?= auto

pytest: bootstrap
	$(PYTHON) -m pytest -q -n $(TEST_WORKERS) --maxprocesses=4 --dist worksteal

test: lint types pytest

bench: bootstrap
	$(PYTHON) -m bench

demo: bootstrap
	$(PYTHON) -m fieldforce.demo
	$(PYTHON) -m fieldforce.demo_leads
