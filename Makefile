# The two commands of the README: `make up` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: up test install bench clean cluster-test

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

# torch and torchvision first, pinned: pip takes them from this machine's disk
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q torch==2.14.1 torchvision==0.29.1
	# setuptools' box about editable installs says nothing a user of this checkout needs (issue 20)
	PYTHONWARNINGS="ignore:Editable installation" $(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

# make up PORT=8100 HOST=0.0.0.0 WORKERS=2 (a HOST other than loopback needs API keys: README)
up: $(STAMP)
	$(BIN)/sneaky up $(if $(HOST),--host $(HOST)) $(if $(PORT),--port $(PORT)) $(if $(WORKERS),--workers $(WORKERS))

# lint and types first: a style, import-order or typing regression fails the suite (pyproject.toml)
test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/python -m pytest -q $(PYTEST_ARGS)

# the fleet on one machine, broken four ways (root: network namespaces; about five minutes; not in `make test`)
cluster-test: $(STAMP)
	SNEAKY_CLUSTER_TEST=1 SNEAKY_CLUSTER_REPORT=docs/deploy.md $(BIN)/python -m pytest -q -s tests/cluster

# every comparison in one run, as ratios; each script replaces its own section of docs/benchmarks.md
bench: $(STAMP)
	$(BIN)/python bench/pconv_layers.py --sizes 256 512 --batches 1 --width 1.0 --repeats 5 --write docs/benchmarks.md
	$(BIN)/python bench/pconv_layers.py --sizes 512 --batches 1 4 16 --width 0.5 --repeats 3 --write docs/benchmarks.md
	$(BIN)/python bench/batching.py --write docs/benchmarks.md
	$(BIN)/python bench/flip_average.py --write docs/benchmarks.md
	$(BIN)/python bench/window.py --write docs/benchmarks.md
	$(BIN)/python bench/bridge.py --write docs/benchmarks.md
	$(BIN)/python bench/service.py --write docs/benchmarks.md
	$(BIN)/python bench/huge_photo.py --write docs/benchmarks.md
	$(BIN)/python bench/hostile.py --write docs/benchmarks.md
	$(BIN)/python bench/pool_threads.py --write docs/benchmarks.md
	$(BIN)/python bench/png_encoding.py --write docs/benchmarks.md
	$(BIN)/python bench/cpu_runtimes.py --write docs/benchmarks.md
	$(BIN)/python bench/pconv_stack.py --photos 120 --write docs/benchmarks.md
	$(BIN)/python bench/big_batch.py --write docs/benchmarks.md
	$(BIN)/python bench/profile_service.py --write docs/benchmarks.md
	# beside IOPaint when it is installed apart: make bench IOPAINT=/path/to/venv/bin/iopaint
	$(if $(IOPAINT),$(BIN)/python bench/iopaint_compare.py --iopaint $(IOPAINT) --write docs/benchmarks.md)

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis
