# The two commands a newcomer needs (see README):
#   make paper  -- set up .venv and rebuild every figure and table on the default (quick) profile
#   make test   -- set up .venv and run the whole test suite (ruff, pytest incl. the smoke workflow, nbval)
#   make docs   -- set up .venv and build the documentation site into docs/_build/html
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
PROFILE ?= quick
# settings for one rebuild by dotted path, e.g. SET="planners.latco.iterations=100" (README)
SET ?=
# Two threads and OpenMP busy-waiting make torch 5-15x slower under any other load (measured);
# small LAPACK blocks are fastest single-threaded.
export OMP_WAIT_POLICY ?= PASSIVE
export OPENBLAS_NUM_THREADS ?= 1

.PHONY: setup paper test lint gl-check clean-venv gpu-wheels docs

$(VENV)/.installed: pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info[:2] >= (3, 11), "latco needs Python >= 3.11, found " + sys.version' 
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# torch first and pinned: anything unpinned would pull a multi-GB CUDA build
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[test,docs]'
	touch $@

setup: $(VENV)/.installed gl-check

gl-check: $(VENV)/.installed
	@$(PY) -m latco.envs.gl

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check latco tests benchmarks docs

test: setup lint
	$(PY) -m pytest
	# notebooks 10-14 only read results: make the smoke profile's first (about a minute)
	$(PY) -m latco.paper.produce --profile smoke
	@if ls notebooks/*.ipynb >/dev/null 2>&1; then \
		$(PY) -m pytest --nbval-lax -p no:cacheprovider notebooks/ --nbval-sanitize-with notebooks/sanitize.cfg -o addopts=""; \
	fi

# The site: README, docs/*.md, the committed executed notebooks in docs/quick/ (not executed
# again) and the API reference; -W: a warning fails the build, as in tests/test_docs.py.
docs: $(VENV)/.installed
	$(VENV)/bin/sphinx-build -W --keep-going -b html docs docs/_build/html

paper: setup
	$(VENV)/bin/snakemake --cores all all --config profile=$(PROFILE) $(if $(strip $(SET)),set="$(SET)")

# Wheels a lent accelerator (Python 3.12, its own torch, numpy, scipy, pandas, matplotlib) lacks
# for benchmarks/gpu_check.py; carried as wheels-gpu/ (docs/gpu.md has the one command).
GPU_WHEELS := mujoco==3.3.0 absl-py etils glfw pyopengl gymnasium==1.4.0 cloudpickle farama-notifications \
	typing-extensions tabulate==0.10.0 tqdm==4.70.1 imageio==2.38.1 packaging==25.0
gpu-wheels: $(VENV)/.installed
	$(PY) -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
		--platform manylinux2014_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux_2_28_x86_64 \
		-d wheels-gpu $(GPU_WHEELS)

clean-venv:
	rm -rf $(VENV)
