# Two commands on a fresh machine: `make demo` (the demo study end to end) and `make test`.
# Each sets itself up: a virtual environment with torch and this package.
#
# Which torch: TORCH_SPEC is what pip installs first, TORCH_INDEX (optional) the index it comes from. The default,
# torch==2.13.0 from pip's configured index, gets whatever build that index serves (here the CPU build; from PyPI
# on Linux x86_64, a build that pulls the CUDA libraries). Ask for a build explicitly with an index:
#   make install TORCH_INDEX=https://download.pytorch.org/whl/cpu                  # CPU only, no CUDA libraries
#   make install TORCH_SPEC='torch==2.9.1' TORCH_INDEX=https://download.pytorch.org/whl/cu128   # CUDA 12.8
# TORCH_SPEC must fall within pyproject's torch bounds (>=2.4,<2.14). EXTRAS: the package's extras installed
# (dev: tests and lint; notebooks: papermill & co. for `make demo`; tracking: TensorBoard).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
TORCH_SPEC ?= $(or $(TORCH),torch==2.13.0)
TORCH_INDEX ?=
EXTRAS ?= dev,notebooks,tracking
PYTEST_ARGS ?=
# `make test` stops the SLURM daemons (and MariaDB, munge) that its tests started, and only those: slurm-up.sh
# lists what it starts in this file (tests/test_slurm.py passes it on); daemons already up are left running.
SLURM_CI_DIR ?= /tmp/xlmr-slurm
export SLURM_CI_STARTED ?= $(SLURM_CI_DIR)/started-by-make-test

.PHONY: install test lint demo clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# torch first, pinned: an unpinned torch pulls several GB of CUDA packages
	$(PY) -m pip install -q $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX)) '$(TORCH_SPEC)'
	$(PY) -m pip install -q -e '.[$(EXTRAS)]'
	touch $@

lint: install
	$(VENV)/bin/ruff check .

test: lint
	rm -f $(SLURM_CI_STARTED)
	status=0; $(PY) -m pytest $(PYTEST_ARGS) || status=$$?; \
	  scripts/slurm-down.sh --started $(SLURM_CI_STARTED) || status=1; \
	  exit $$status

demo: install
	$(PY) -u sweeps/demo.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache *.egg-info
