# `make demo` and `make test` each set up a fresh machine idempotently: system packages when missing
# (Java for METEOR, Chromium for the browser tests), a .venv, and the project with constraints.txt.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

BENCH_JSON ?= .benchmarks/guard/last.json
RUNS ?= 5

.PHONY: setup system demo test lint bench bench-reference clean

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

# `make bench` ends with the speed guard: each ratio against benchmarks/reference.json, exit 1 if one fell
# below its band (docs/benchmarks.md, "Guard"); `make bench-reference` re-measures the reference (RUNS runs).
bench: setup
	@mkdir -p $(dir $(BENCH_JSON)) && rm -f $(BENCH_JSON)
	$(BIN)/python -m pytest benchmarks --benchmark-only --benchmark-columns=min,mean,rounds -q \
		--benchmark-json=$(BENCH_JSON); status=$$?; \
		$(BIN)/python -m benchmarks.guard check $(BENCH_JSON) || status=$$?; exit $$status

bench-reference: setup
	$(BIN)/python -m benchmarks.guard update --runs $(RUNS)

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
