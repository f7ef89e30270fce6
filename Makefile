# Two commands on a fresh machine: `make demo` (the demo study end to end) and `make test`.
# Each sets itself up: a virtual environment with the CPU build of torch and this package.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
TORCH ?= torch==2.13.0
PYTEST_ARGS ?=

.PHONY: install test lint demo clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# torch first, pinned: an unpinned torch pulls several GB of CUDA packages
	$(PY) -m pip install -q $(TORCH)
	$(PY) -m pip install -q -e '.[dev]'
	touch $@

lint: install
	$(VENV)/bin/ruff check .

test: lint
	$(PY) -m pytest $(PYTEST_ARGS)

demo: install
	$(PY) -u sweeps/demo.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache *.egg-info
