# One task runner for people and CI. `make demo` and `make test` are the README's two commands.
VENV ?= .venv
PYTHON ?= python3
BIN := $(VENV)/bin

.PHONY: install demo test lint unit e2e chaos bench services clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $@

install: $(BIN)/.installed

demo: install
	$(BIN)/remixq demo

services:
	scripts/ensure-services

lint: install
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/lint-imports

test: install services lint
	$(BIN)/python -m pytest

unit: install
	$(BIN)/python -m pytest -m "not e2e and not chaos"

e2e: install services
	$(BIN)/python -m pytest -m e2e

chaos: install services
	$(BIN)/python -m pytest -m chaos

bench: install services
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) remixq-data .pytest_cache .mypy_cache .ruff_cache .import_linter_cache
