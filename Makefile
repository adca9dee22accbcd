# Two commands on a fresh machine: `make demo` and `make test`. Each installs what it needs into .venv/.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
export ASCOLTA_DATA_DIR ?= $(CURDIR)/.ascolta
DURATION ?=

.PHONY: install model demo test test-scale bench clean

$(BIN)/ascolta: pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "need $(PYTHON) (Python 3.11)" >&2; exit 2; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	# The CPU build of torch, pinned: an unpinned torch pulls a multi-GB CUDA build.
	$(BIN)/pip install --quiet "torch==2.13.0"
	$(BIN)/pip install --quiet -e ".[model,broker,test]"
	touch $(BIN)/ascolta

install: $(BIN)/ascolta

model: install
	$(BIN)/ascolta model

demo: model
	$(BIN)/ascolta demo $(if $(DURATION),--duration $(DURATION))

test: model
	$(BIN)/python -m pytest -q -rs -m "not scale" --durations=25

test-scale: model
	$(BIN)/python -m pytest -q -rs -m scale

bench: model
	$(BIN)/python benchmarks/pipeline.py
	$(BIN)/python benchmarks/sentiment_throughput.py
	$(BIN)/python benchmarks/sentiment_accuracy.py
	$(BIN)/python benchmarks/nab_realtweets.py

clean:
	rm -rf $(VENV) .ascolta .pytest_cache
