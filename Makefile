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

.PHONY: setup run test lint test-sqlite test-postgres services bench assets lock audit

# Every third-party package, direct or not, comes from the hashed lock files
# (make lock writes them from requirements*.txt): pip refuses anything whose
# hash differs, so every organisation runs the same code. The project's own
# local packages follow with --no-deps (their dependencies are in the lock)
# and --no-build-isolation (their build backend, setuptools, is too).
LOCAL_PACKAGES ?= ./clients/python
UV_COMPILE = $(VENV)/bin/uv pip compile --quiet --generate-hashes --python-version 3.11 --custom-compile-command "make lock"

# The client package is installed as a copy, so any change to its sources reinstalls it
# (processes that import it outside manage.py and pytest would otherwise run stale code).
CLIENT_SOURCES := $(shell find clients/python/src -name '*.py')
$(VENV)/.installed: requirements.lock requirements-dev.lock clients/python/pyproject.toml $(CLIENT_SOURCES)
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --require-hashes --no-deps -r requirements-dev.lock
	$(PIP) install --quiet --no-deps --no-build-isolation $(LOCAL_PACKAGES)
	touch $@

setup: $(VENV)/.installed

run: setup
	$(PY) manage.py devnet --orgs $(ORGS) --traffic

services:
	bash .ci/services

# mypy's Django plugin imports the settings (which need a secret key, or debug)
# and the models, with the protocol from this checkout as manage.py has it.
LINT_ENV := DJANGO_DEBUG=1 PYTHONPATH=.:clients/python/src

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(LINT_ENV) $(VENV)/bin/mypy
	$(LINT_ENV) $(VENV)/bin/lint-imports

# Two workers: the real-process tests (marked slow) run one at a time on one of
# them, the rest of the suite beside them (tests/conftest.py).
PYTEST_ARGS ?= -n 2 --dist loadgroup --durations=25

test-sqlite: setup
	env -u DATABASE_URL REDIS_URL=$(TEST_REDIS_URL) $(VENV)/bin/pytest $(PYTEST_ARGS)

test-postgres: setup
	DATABASE_URL=$(TEST_DATABASE_URL) REDIS_URL=$(TEST_REDIS_URL) $(VENV)/bin/pytest $(PYTEST_ARGS)

test: setup services lint test-sqlite test-postgres

# Rewrite the lock files from requirements*.txt, keeping every version already
# locked unless a requirement changed (uv prefers the versions in the output
# file). The whole tree first, then the runtime subset (the image's) within it,
# so both agree on every version. `make lock UPGRADE=1` takes newer releases.
lock: setup
	$(UV_COMPILE) $(if $(UPGRADE),--upgrade) --output-file requirements-dev.lock requirements-dev.txt
	$(UV_COMPILE) --constraint requirements-dev.lock --output-file requirements.lock requirements.txt

# Known vulnerabilities in the locked tree (PyPI's advisory data). Not part of
# `make test`: a newly published advisory must not fail every submission.
audit: setup
	$(VENV)/bin/pip-audit --requirement requirements-dev.lock --require-hashes --disable-pip --strict --progress-spinner off

bench: setup
	$(PY) -m bench

# The explorer's chart library, pinned in package-lock.json, copied into
# static/vendor/ (committed, so tests and CI need no npm).
assets:
	npm ci --no-audit --no-fund --ignore-scripts
	mkdir -p static/vendor
	cp node_modules/chart.js/dist/chart.umd.js static/vendor/chart.umd.js
	cp node_modules/chart.js/LICENSE.md static/vendor/chart.js.LICENSE.md
