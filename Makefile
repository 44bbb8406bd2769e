# One task runner for people and CI. `make demo` and `make test` are the README's two commands.
# Installs come from the lock files in requirements/ (`make lock` writes them from pyproject.toml),
# so a new release upstream changes nothing here until a commit changes a lock.
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin
# Only `make lock` needs uv; pinned so that the same pyproject.toml gives the same locks.
UV_VERSION := 0.13.9
# `make lock` keeps the pins it can; `make lock LOCK_FLAGS=--upgrade` moves them to the newest.
LOCK_FLAGS ?=
COMPILE := $(BIN)/uv pip compile pyproject.toml --quiet --universal --python-version 3.11 \
	--custom-compile-command "make lock" $(LOCK_FLAGS)

.PHONY: install lock demo test lint unit e2e chaos bench bench-install services clean

# The venv's own pip installs the pinned set, then the package itself without dependencies and
# with the locked setuptools, so nothing unpinned is fetched.
$(BIN)/.installed: pyproject.toml requirements/dev.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q -r requirements/dev.lock
	$(BIN)/python -m pip install -q --no-deps --no-build-isolation -e .
	touch $@

install: $(BIN)/.installed

# main.lock: the runtime and Flower (the Dockerfile); dev.lock: runtime + the dev extra, with the runtime
# pins of main.lock, for the Makefile and CI.
lock: install
	$(BIN)/python -m pip install -q uv==$(UV_VERSION)
	$(COMPILE) --extra flower -o requirements/main.lock
	$(COMPILE) --extra dev --extra flower --constraint requirements/main.lock -o requirements/dev.lock
	$(COMPILE) --extra dev --extra flower --extra bench --constraint requirements/dev.lock -o requirements/bench.lock

demo: install
	$(BIN)/remixq demo

services:
	scripts/ensure-services

lint: install
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/lint-imports

# The suite runs in parallel processes (pytest-xdist), each with its own databases
# (tests/support/databases.py): the end-to-end and chaos scenarios spend most of their time
# waiting on the processes they start, so they overlap well even on two cores.
TEST_WORKERS ?= 3

# The whole suite on Redis, then the end-to-end tests again on RabbitMQ (REMIXQ_TEST_BROKER:
# tests/support/stack.py), so that both brokers are exercised by every run.
test: install services lint
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile
	REMIXQ_TEST_BROKER=rabbitmq $(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile -m e2e

unit: install
	$(BIN)/python -m pytest -m "not e2e and not chaos"

e2e: install services
	$(BIN)/python -m pytest -m e2e
	REMIXQ_TEST_BROKER=rabbitmq $(BIN)/python -m pytest -m e2e

chaos: install services
	$(BIN)/python -m pytest -m chaos

# The bench alone needs more: the `bench` extra (Runware's SDK for the peer baseline, from
# bench.lock) and wrk (Debian's package) as its second load generator. The test path needs neither.
$(BIN)/.bench-installed: $(BIN)/.installed requirements/bench.lock
	$(BIN)/python -m pip install -q -r requirements/bench.lock
	touch $@

bench-install: $(BIN)/.bench-installed
	scripts/ensure-wrk

bench: install services bench-install
	$(BIN)/python -m bench $(BENCH_ARGS)

clean:
	rm -rf $(VENV) remixq-data .pytest_cache .mypy_cache .ruff_cache .import_linter_cache
