# keras_autoopt — set-up, demo and tests on a fresh machine.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
OUTPUT ?= runs/demo

.PHONY: .venv demo test lint bench clean

$(STAMP): setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

# Only the install: the virtual environment with the package and its dev extras.
.venv: $(STAMP)

demo: $(STAMP)
	$(BIN)/keras-autoopt demo --output $(OUTPUT)

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -n 2

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

bench: $(STAMP)
	$(BIN)/python benchmarks/overhead.py
	$(BIN)/python benchmarks/demo.py
	$(BIN)/python benchmarks/compression.py
	$(BIN)/python benchmarks/distillation.py
	$(BIN)/python benchmarks/transfer.py
	$(BIN)/python benchmarks/pareto.py
	$(BIN)/python benchmarks/faults.py
	$(BIN)/python benchmarks/cli_startup.py
	$(BIN)/python benchmarks/targets.py
	$(BIN)/python benchmarks/pareto.py --target tflm --seeds 0 1 2 3 4 --oracles random nsga2
	$(BIN)/python benchmarks/sparse_export.py

clean:
	rm -rf $(VENV) runs build *.egg-info
