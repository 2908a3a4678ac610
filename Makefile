# trialbook: every gate in one place. `make install` once, then `make demo` / `make test`.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# PostgreSQL used by the store contract tests (trust auth on this machine and in CI).
export TRIALBOOK_TEST_PG_URI ?= postgresql://postgres@127.0.0.1:5432/test

.PHONY: install demo test check clean

# The Ultralytics stack: torch and torchvision built together (on x86_64 here pip takes both
# from the machine's local files), installed in one command so pip cannot mix them.
YOLO_PINS := torch==2.14.1 torchvision==0.29.1 ultralytics==8.4.190

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev,tensorboard,ui,onnx]' $(YOLO_PINS)
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
