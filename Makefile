# The two commands of the README: `make demo` and `make test`.
# Each creates the virtual environment and installs what is missing first.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo run test lint test-sqlite test-postgresql bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/ripartire demo

run: $(STAMP)
	$(BIN)/ripartire run

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

test-sqlite: $(STAMP)
	RIPARTIRE_TEST_DATABASE=sqlite $(BIN)/pytest

test-postgresql: $(STAMP)
	RIPARTIRE_TEST_DATABASE=postgresql $(BIN)/pytest

test: lint test-sqlite test-postgresql

bench: $(STAMP)
	$(BIN)/python -m tests.bench

clean:
	rm -rf $(VENV) data .pytest_cache .mypy_cache .ruff_cache
