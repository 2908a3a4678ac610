# trialbook: every gate in one place. `make install` once, then `make demo` / `make test`.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# PostgreSQL used by the store contract tests (trust auth on this machine and in CI).
export TRIALBOOK_TEST_PG_URI ?= postgresql://postgres@127.0.0.1:5432/test

.PHONY: install demo test check clean

# The Ultralytics stack known to work offline on CPU here: installed in one command, so
# that pip keeps the CPU build of torch (torchvision 0.28.0 is the one that pins it).
YOLO_PINS := torch==2.13.0 torchvision==0.28.0 ultralytics==8.4.190

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev,tensorboard,ui]' $(YOLO_PINS)
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	rm -rf demo-book
	$(BIN)/trialbook demo demo-book
	cd demo-book && ../$(BIN)/trialbook runs
	cd demo-book && ../$(BIN)/trialbook decide v3_pallets_added_imgsz_640 --baseline v2_imgsz_1024

test: $(STAMP)
	$(BIN)/pytest -q

# Every static gate: lint (with the complexity limit), the one formatting, types of the
# package and of the tests, and the import layers of pyproject.toml.
check: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports

clean:
	rm -rf $(VENV) demo-book build dist .pytest_cache .mypy_cache .ruff_cache
