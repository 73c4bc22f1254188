# fraudstream: `make run` starts the whole system, `make test` runs every test.
# Both install what they need first (a Python venv with the project; Kafka jars and
# redis-server are fetched by the services launcher when first needed).

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: install browser run test test-unit test-integration lint typecheck bench services-up services-down clean

install: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	@touch $(STAMP)

# Headless Chromium and its driver (Debian packages) for the dashboard's browser test; installed
# when root, else the browser test skips and says why.
browser:
	@if [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  echo "installing chromium and chromium-driver (apt-get) for the browser test"; \
	  { DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null; } || \
	  echo "note: apt-get could not install chromium: the browser test will skip"; \
	else echo "note: chromium/chromium-driver are missing and this is not root: the browser test will skip"; fi

run: install
	$(BIN)/fraudstream run

test: install browser
	$(BIN)/python -m pytest

test-unit: install
	$(BIN)/python -m pytest tests/unit fraudstream stream features models api

test-integration: install browser
	$(BIN)/python -m pytest tests/integration tests/e2e

lint: install
	$(BIN)/ruff check .
	$(BIN)/mypy

bench: install
	$(BIN)/python bench/e2e.py
	$(BIN)/python bench/features.py

services-up: install
	$(BIN)/fraudstream services up

services-down: install
	$(BIN)/fraudstream services down

clean:
	rm -rf .fraudstream .pytest_cache .mypy_cache .ruff_cache
