# Every target that runs code first makes sure .venv exists and matches pyproject.toml.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

# Debian packages the demo and the tests use: a browser for the UI test, the
# Fashion-MNIST files, WordNet for matching people's names with class names.
SYSTEM_PACKAGES := chromium dataset-fashion-mnist wordnet-base wordnet-sense-index
SYSTEM_STAMP := $(VENV)/.system-packages-stamp

.PHONY: demo test test-fast ui bench lint format clean-venv system-packages

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

$(SYSTEM_STAMP): | $(STAMP)
	@./scripts/install-system-packages.sh $(SYSTEM_PACKAGES)
	@touch $(SYSTEM_STAMP)

system-packages: $(SYSTEM_STAMP)

demo: $(STAMP) $(SYSTEM_STAMP)
	$(BIN)/unitcat demo

# one pytest worker per CPU (pytest-xdist), each with its own embedded server; a worker that
# runs out of tests takes some of the other's, so both end together
PYTEST_PARALLEL := -n auto --dist worksteal

test: $(STAMP) $(SYSTEM_STAMP)
	$(BIN)/python -m pytest $(PYTEST_PARALLEL)

# The quick part of the suite while developing: no tests marked slow (trained networks,
# servers of their own, Ray, the browser; tests/conftest.py marks them); `make test` runs them all.
test-fast: $(STAMP) $(SYSTEM_STAMP)
	$(BIN)/python -m pytest $(PYTEST_PARALLEL) -m "not slow"

ui: $(STAMP)
	$(BIN)/unitcat ui

bench: $(STAMP)
	$(BIN)/python bench/run_all.py

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

format: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

clean-venv:
	rm -rf $(VENV)
