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
# `make test` and `make nbval` run TEST_JOBS test files (notebooks) at once (pytest-xdist; all of one
# file's tests, and all of one notebook's cells in order, in one worker); TEST_JOBS=0: one at a time.
# `make test` runs the notebooks and tests/ in one session, notebooks first (xdist's reordering by
# test count off): the long notebooks start first and the short test files fill the last minutes.
TEST_JOBS ?= 2
XDIST := -n $(TEST_JOBS) --dist loadfile
# `make reports` runs REPORT_JOBS notebooks at once; those whose results are times or memory peaks
# (xentlab.profiles.TIMED) then run one at a time with the machine to themselves.
REPORT_JOBS ?= 2
NBVAL_FLAGS := --nbval --nbval-current-env --nbval-sanitize-with notebooks/sanitize.cfg
NBVAL := $(PY) -m pytest -q $(XDIST) $(NBVAL_FLAGS) notebooks

.PHONY: help setup data reports test test-fast nbval notebooks lab site site-check chromium lint clean lock bench reproduce-check

help: ## list the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  make %-16s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

setup: $(STAMP) ## create .venv from requirements.lock and install xentlab (editable); no-op when up to date

$(STAMP): requirements.lock pyproject.toml Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)
	# compiled to bytecode here: Python never writes it where PYTHONDONTWRITEBYTECODE is set, and then
	# every process (each notebook kernel, each fresh measuring process) recompiles TensorFlow on import
	$(VENV)/bin/uv pip sync --quiet --compile-bytecode --python $(PY) requirements.lock
	$(VENV)/bin/uv pip install --quiet --python $(PY) --no-deps -e .
	# the committed notebooks' kernelspec is python3 / "Python 3": the same name, so they open unmodified
	$(PY) -m ipykernel install --sys-prefix --name python3 --display-name "Python 3" >/dev/null
	# C-level output (TensorFlow's oneDNN notice) goes to the kernel's own stderr, not into notebooks
	$(PY) -c "import json; p = '$(VENV)/share/jupyter/kernels/python3/kernel.json'; k = json.load(open(p)); \
	  k['argv'] += ['--IPKernelApp.capture_fd_output=False']; json.dump(k, open(p, 'w'), indent=1)"
	# JupyterLab in this venv never autosaves: the committed notebooks are nbval's references
	mkdir -p $(VENV)/share/jupyter/lab/settings
	echo '{"@jupyterlab/docmanager-extension:plugin": {"autosave": false}}' > $(VENV)/share/jupyter/lab/settings/overrides.json
	touch $(STAMP)

data: $(STAMP) ## fetch and verify both datasets (mnist10k, then mnist, the default, cross-checked with it)
	$(PY) -m xentlab data --dataset mnist10k
	$(PY) -m xentlab data --dataset mnist

reports: data ## run every notebook with papermill into reports/$(PROFILE)/ (PROFILE=smoke|ci|paper), then the README's generated sections
	$(PY) -m xentlab reports --profile $(PROFILE) --jobs $(REPORT_JOBS)
	$(PY) -m xentlab readme

test: data ## nbval over the committed notebooks, and the unit, property and pipeline tests
	$(PY) -m pytest -q $(XDIST) --no-loadscope-reorder -m "not browser" $(NBVAL_FLAGS) notebooks tests

test-fast: data ## unit and property tests only, no kernels or subprocesses (under 2 minutes)
	$(PY) -m pytest -q -m "not slow and not browser" tests

nbval: data ## nbval alone (TF_ENABLE_ONEDNN_OPTS=0 make nbval: under Eigen's CPU kernels)
	$(NBVAL)

notebooks: data ## re-execute the committed notebooks in place with their default parameters
	$(PY) -m xentlab notebooks

# Extra flags for `make lab`, e.g. LAB_FLAGS="--no-browser --port 8890"; --allow-root is added for root.
LAB_FLAGS ?=
lab: $(STAMP) ## start JupyterLab at the repository's root (so every link resolves), opened on notebook 01; LAB_FLAGS="..." adds flags
	$(VENV)/bin/jupyter lab --ServerApp.root_dir=$(CURDIR) \
	  --LabApp.default_url=/lab/tree/notebooks/01_batch_mean.ipynb \
	  $(if $(filter 0,$(shell id -u)),--allow-root) $(LAB_FLAGS)

# MathJax for the site's maths, served from the site itself (it builds and reads offline): the npm
# package, hash-checked.
MATHJAX := build/mathjax/es5/tex-mml-chtml.js
MATHJAX_SHA256 := 1b9c0a1c44df864e915690558e72adb9cc5203360daefd385084ced3b6c64c09
$(MATHJAX):
	mkdir -p build/mathjax
	cd build && npm pack mathjax@3.2.2 --silent >/dev/null
	echo "$(MATHJAX_SHA256)  build/mathjax-3.2.2.tgz" | sha256sum --check --quiet
	tar xzf build/mathjax-3.2.2.tgz -C build/mathjax --strip-components=1 package/es5
	rm build/mathjax-3.2.2.tgz

site: $(STAMP) $(MATHJAX) ## the static site in build/site/ from the committed notebooks, docs and reports (nothing re-executed)
	rm -rf build/site
	$(PY) -m sphinx -q -W --keep-going -b html -c docs/site . build/site
	@echo "site: build/site/index.html"

# Debian's chromium (and a CJK font, for the documents' Chinese in screenshots), for the browser
# checks; installed where missing (as root, else say how).
# CHROMIUM=/path/to/chrome uses another Chromium-based browser instead.
chromium: ## install Debian's chromium where missing (the browser checks drive it)
	@test -x "$${CHROMIUM:-/usr/bin/chromium}" || command -v chromium >/dev/null || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-wqy-zenhei >/dev/null; \
	  else echo "chromium is missing: sudo apt-get install chromium (or set CHROMIUM=/path/to/chromium)"; exit 1; fi; }

site-check: site chromium ## the built site and a JupyterLab run of notebook 08, in headless Chromium
	$(PY) -m xentlab site-check build/site
	$(PY) -m pytest -q -m browser tests

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
