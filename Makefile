# Every target creates .venv and installs the project itself, so a fresh machine needs nothing else.
PY      ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed

.PHONY: test lint demo bench clean

$(STAMP): pyproject.toml setup.py collector/receivers/_fast_decode.c collector/_fast_rows.c
	test -d $(VENV) || $(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

test: lint
	bash tests/demo/install_chromium.sh
	$(BIN)/pytest -q -p no:cacheprovider

demo: $(STAMP)
	$(BIN)/otel-tokens demo

bench: $(STAMP)
	$(BIN)/python bench/run_all.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache *.duckdb *.duckdb.wal
