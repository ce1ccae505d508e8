# `make demo` and `make test` each set up a fresh machine idempotently: system packages when missing
# (Java for METEOR, Chromium for the browser tests), a .venv, and the project with constraints.txt.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: setup system demo test lint bench clean

system:
	@bash scripts/system-packages.sh

$(STAMP): pyproject.toml constraints.txt
	@test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -c constraints.txt -e '.[all]'
	@touch $(STAMP)

setup: system $(STAMP)

demo: setup
	$(BIN)/harness run --method mmedpo

test: setup
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q -n 2 --dist loadfile

bench: setup
	$(BIN)/python -m pytest benchmarks --benchmark-only --benchmark-columns=min,mean,rounds -q

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
