# trialbook: every gate in one place. `make install` once, then `make demo` / `make test`.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# PostgreSQL used by the store contract tests (trust auth on this machine and in CI).
export TRIALBOOK_TEST_PG_URI ?= postgresql://postgres@127.0.0.1:5432/test

.PHONY: install demo test check clean

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	rm -rf demo-book
	$(BIN)/trialbook demo demo-book
	cd demo-book && ../$(BIN)/trialbook runs

test: $(STAMP)
	$(BIN)/pytest -q

check: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/mypy

clean:
	rm -rf $(VENV) demo-book build dist .pytest_cache .mypy_cache .ruff_cache
