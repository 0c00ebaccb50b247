# The two commands of the README: `make demo` and `make test`.
# Each creates the virtual environment and installs what is missing first.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
ASSETS := dashboard/assets/node_modules/.installed
# The package's extras: the developers' tools here; none in the image (Dockerfile).
EXTRAS ?= [dev]

.PHONY: demo run test lint test-sqlite test-postgresql bench clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.$(EXTRAS)'
	touch $(STAMP)

# Bootstrap Italia and htmx, served by the dashboard itself (no CDN). No lock file:
# package-lock.json records download addresses; versions are pinned in package.json.
$(ASSETS): dashboard/assets/package.json
	cd dashboard/assets && npm install --no-package-lock --no-audit --no-fund --loglevel=error
	touch $(ASSETS)

demo: $(STAMP) $(ASSETS)
	$(BIN)/ripartire demo

run: $(STAMP) $(ASSETS)
	$(BIN)/ripartire run

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

test-sqlite: $(STAMP) $(ASSETS)
	RIPARTIRE_TEST_DATABASE=sqlite $(BIN)/pytest

test-postgresql: $(STAMP) $(ASSETS)
	RIPARTIRE_TEST_DATABASE=postgresql $(BIN)/pytest

test: lint test-sqlite test-postgresql

bench: $(STAMP)
	$(BIN)/python -m tests.bench

clean:
	rm -rf $(VENV) data .pytest_cache .mypy_cache .ruff_cache dashboard/assets/node_modules
