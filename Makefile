# Consortium: the two commands of the README, and their building blocks.
#   make run   - set up and start a local 4-organisation consortium (devnet)
#   make test  - set up and run the whole test suite (SQLite, then PostgreSQL)

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/postgres
TEST_REDIS_URL ?= redis://127.0.0.1:6379/0
ORGS ?= 4

.PHONY: setup run test lint test-sqlite test-postgres services bench assets

$(VENV)/.installed: requirements.txt requirements-dev.txt clients/python/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip==26.3
	$(PIP) install --quiet -r requirements-dev.txt
	$(PIP) install --quiet --no-deps ./clients/python
	touch $@

setup: $(VENV)/.installed

run: setup
	$(PY) manage.py devnet --orgs $(ORGS) --traffic

services:
	bash .ci/services

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

test-sqlite: setup
	env -u DATABASE_URL REDIS_URL=$(TEST_REDIS_URL) $(VENV)/bin/pytest

test-postgres: setup
	DATABASE_URL=$(TEST_DATABASE_URL) REDIS_URL=$(TEST_REDIS_URL) $(VENV)/bin/pytest

test: setup services lint test-sqlite test-postgres

bench: setup
	$(PY) -m bench

# The explorer's chart library, pinned in package-lock.json, copied into
# static/vendor/ (committed, so tests and CI need no npm).
assets:
	npm ci --no-audit --no-fund --ignore-scripts
	mkdir -p static/vendor
	cp node_modules/chart.js/dist/chart.umd.js static/vendor/chart.umd.js
	cp node_modules/chart.js/LICENSE.md static/vendor/chart.js.LICENSE.md
