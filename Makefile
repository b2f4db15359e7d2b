# xentlab — `make help` lists every target.
.DEFAULT_GOAL := help
SHELL := /bin/bash

PYTHON   ?= python3
VENV     := .venv
PY       := $(VENV)/bin/python
PROFILE  ?= ci
UV_VERSION := 0.13.8
STAMP    := $(VENV)/.installed
# TensorFlow's C++ logs (oneDNN notices etc.) go to stderr; keep them out of every run.
export TF_CPP_MIN_LOG_LEVEL := 2
# TensorFlow picks its oneDNN or Eigen CPU kernels from the CPU's flags unless this is set
# (docs/glossary.md, "oneDNN and Eigen kernels"); the two print different digits. oneDNN on every
# x86 machine by default (xentlab.runtime.TF_ENVIRONMENT); `TF_ENABLE_ONEDNN_OPTS=0 make nbval`
# checks the committed notebooks under Eigen's kernels.
export TF_ENABLE_ONEDNN_OPTS ?= 1
NBVAL := $(PY) -m pytest -q --nbval --nbval-current-env --nbval-sanitize-with notebooks/sanitize.cfg notebooks

.PHONY: help setup data reports test test-fast nbval notebooks lab lint clean lock bench reproduce-check

help: ## list the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  make %-16s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

setup: $(STAMP) ## create .venv from requirements.lock and install xentlab (editable); no-op when up to date

$(STAMP): requirements.lock pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)
	$(VENV)/bin/uv pip sync --quiet --python $(PY) requirements.lock
	$(VENV)/bin/uv pip install --quiet --python $(PY) --no-deps -e .
	$(PY) -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (xentlab)" >/dev/null
	# C-level output (TensorFlow's oneDNN notice) goes to the kernel's own stderr, not into notebooks
	$(PY) -c "import json; p = '$(VENV)/share/jupyter/kernels/python3/kernel.json'; k = json.load(open(p)); \
	  k['argv'] += ['--IPKernelApp.capture_fd_output=False']; json.dump(k, open(p, 'w'), indent=1)"
	touch $(STAMP)

data: $(STAMP) ## fetch and verify both datasets (mnist10k, then mnist, the default, cross-checked with it)
	$(PY) -m xentlab data --dataset mnist10k
	$(PY) -m xentlab data --dataset mnist

reports: data ## run every notebook with papermill into reports/$(PROFILE)/ (PROFILE=smoke|ci|paper), then the README's generated sections
	$(PY) -m xentlab reports --profile $(PROFILE)
	$(PY) -m xentlab readme

test: data ## unit, property and pipeline tests, then nbval over the committed notebooks
	$(PY) -m pytest -q tests
	$(NBVAL)

test-fast: data ## unit and property tests only, no kernels or subprocesses (under 2 minutes)
	$(PY) -m pytest -q -m "not slow" tests

nbval: data ## nbval alone (TF_ENABLE_ONEDNN_OPTS=0 make nbval: under Eigen's CPU kernels)
	$(NBVAL)

notebooks: data ## re-execute the committed notebooks in place with their default parameters
	$(PY) -m xentlab notebooks

lab: $(STAMP) ## start JupyterLab on the venv's python3 kernel
	$(VENV)/bin/jupyter lab --notebook-dir=notebooks

lint: $(STAMP) ## ruff over src, tests and notebooks
	$(VENV)/bin/ruff check src tests notebooks

bench: $(STAMP) ## benchmarks (python -m xentlab bench --quick)
	$(PY) -m xentlab bench --quick

reproduce-check: data ## run the ci profile twice and compare metrics and claims (timing excluded)
	$(PY) -m xentlab reproduce-check --profile ci

lock: ## regenerate requirements.lock from pyproject.toml (needs uv)
	uv pip compile pyproject.toml --extra dev --python-version 3.11 --python-platform x86_64-unknown-linux-gnu -o requirements.lock

clean: ## remove the venv, the data cache, scratch output and generated reports
	rm -rf $(VENV) data/raw data/processed .scratch reports/smoke reports/.tmp-* reports/*.failed build src/*.egg-info
