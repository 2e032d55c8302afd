# The two commands of the quick start: `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN = $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 5000

.PHONY: run test test-fast test-any-date lint bench loadtest screenshots translations install install-dev clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $@ $(VENV)/.installed

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

## Set up, create/upgrade the SQLite database under instance/, load the demo, serve.
run: install
	$(BIN)/calendar-app init-db
	CALENDAR_APP_PUBLIC_BASE_URL="$${CALENDAR_APP_PUBLIC_BASE_URL:-http://$(HOST):$(PORT)}" \
		$(BIN)/calendar-app demo  # prints the feed address where this serves
	CALENDAR_APP_SCHEDULER=embedded $(BIN)/calendar-app run --host $(HOST) --port $(PORT)

## Set up (PostgreSQL running, Chromium installed), lint, type-check and run every test.
test: install-dev
	bash scripts/ensure-test-env.sh
	$(BIN)/ruff check .
	$(BIN)/mypy
	TEST_DATABASE_URL="$${TEST_DATABASE_URL:-postgresql+psycopg://postgres@127.0.0.1:5432/test}" \
		$(BIN)/python -m pytest --numprocesses=auto --maxprocesses=4 $(PYTEST_ARGS)

## The quick loop while changing code: domain and service tests on SQLite, no browser.
test-fast: install-dev
	$(BIN)/python -m pytest --numprocesses=auto tests/unit tests/service --databases=sqlite $(PYTEST_ARGS)

## The suite again with the whole process tree's clock a year ahead (libfaketime), as CI
## runs it after `make test`: a test that depends on the day it runs fails here.
test-any-date: install-dev
	bash scripts/ensure-test-env.sh
	TEST_DATABASE_URL="$${TEST_DATABASE_URL:-postgresql+psycopg://postgres@127.0.0.1:5432/test}" \
		bash scripts/test-any-date.sh $(PYTEST_ARGS)

lint: install-dev
	$(BIN)/ruff check .
	$(BIN)/mypy

## Benchmarks (not part of `make test`); figures go to docs/benchmarks.md.
bench: install-dev
	$(BIN)/python -m bench.run
	$(BIN)/python -m bench.booking_bench
	TEST_DATABASE_URL="$${TEST_DATABASE_URL:-postgresql+psycopg://postgres@127.0.0.1:5432/test}" \
		$(BIN)/python -m bench.reminder_bench
	TEST_DATABASE_URL="$${TEST_DATABASE_URL:-postgresql+psycopg://postgres@127.0.0.1:5432/test}" \
		$(BIN)/python -m bench.sync_bench
	TEST_DATABASE_URL="$${TEST_DATABASE_URL:-postgresql+psycopg://postgres@127.0.0.1:5432/test}" \
		$(BIN)/python -m bench.feed_bench

## Load test (not part of `make test`, not in CI): seeds its own PostgreSQL database, runs
## gunicorn as in production and locust in steps; figures go to docs/benchmarks.md.
loadtest: | $(BIN)/python
	$(BIN)/python -m pip install -q -e '.[dev,loadtest]'
	$(BIN)/python -m loadtest.run $(LOADTEST_ARGS)

## Every page a newcomer sees, at phone and desktop width, into docs/screenshots/.
screenshots: install-dev
	bash scripts/ensure-test-env.sh
	$(BIN)/python scripts/screenshots.py

## Re-extract messages and recompile the Swedish catalogue after changing UI texts.
translations: install-dev
	$(BIN)/pybabel extract -F babel.cfg -k _l -k lazy_gettext --no-location -o messages.pot .
	$(BIN)/pybabel update -i messages.pot -d calendar_app/translations --no-fuzzy-matching
	$(BIN)/pybabel compile -d calendar_app/translations
	rm -f messages.pot

clean:
	rm -rf $(VENV) instance .pytest_cache .mypy_cache .ruff_cache dist build
