# One entry point for everything. Every target installs what it needs into .venv (reused when present).
# Each component keeps its own targets in mk/<component>.mk.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip --disable-pip-version-check
STAMPS := $(VENV)/.stamps
# Built wheels that take minutes to compile (llama-cpp-python) are kept here, outside the clone.
WHEEL_CACHE ?= $(HOME)/.cache/lmstudio-agent/wheels
TORCH_VERSION := 2.13.0
LLAMA_CPP_VERSION := 0.3.36
export PIP_CONSTRAINT :=
export PYTHONDONTWRITEBYTECODE := 1

.PHONY: help venv core run test test-fast bench eval lambda-build worker-build clean

help:
	@echo "make run           start the embedded model and run a real agent task end to end"
	@echo "make test          install everything and run the whole test suite"
	@echo "make test-fast     the tests that need neither the model server nor the fine-tuning stack"
	@echo "make bench         run the benchmarks and record the figures under bench/results/"
	@echo "make eval          measure tool-calling accuracy on the project's suite (embedded model)"
	@echo "make finetune-tools fine-tune the embedded model on the suite's tools, measure before/after"
	@echo "make finetune-gpu DATA=rows.jsonl NAME=my-lfm2   the fine-tuning pipeline on a CUDA host"
	@echo "make finetune-cpu DATA=rows.jsonl NAME=my-model  the same pipeline here, a few CPU steps"
	@echo "make lambda-build  sam validate --lint && sam build"
	@echo "make worker-build  wrangler deploy --dry-run, with the core package in the bundle"

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip

venv: $(PY)

# The core library with its CLI and bridge extras, the hub and the eval harness above it, and the test tools.
$(STAMPS)/core: $(PY) core/pyproject.toml hub/pyproject.toml eval/pyproject.toml requirements/dev.txt requirements/fuzz.txt
	$(PIP) install -q -e 'core[cli,bridge]' -e hub -e eval -r requirements/dev.txt -r requirements/fuzz.txt
	@mkdir -p $(STAMPS) && touch $@

core: $(STAMPS)/core

include $(sort $(wildcard mk/*.mk))

# Every component's install stamp: `make test` installs all of them. (Targets from mk/*.mk.)
ALL_STAMPS := $(STAMPS)/core $(STAMPS)/gateway $(STAMPS)/lambda $(STAMPS)/worker $(STAMPS)/finetune
BENCH_TARGETS := bench-core bench-gateway bench-lambda bench-bridge

run: $(STAMPS)/core $(STAMPS)/gateway
	$(PY) scripts/run_demo.py

# Everything but tests/finetune runs in the main venv; tests/finetune runs in the fine-tuning stack's own venv
# (mk/finetune.mk), the CPU end-to-end training run included.
test: $(ALL_STAMPS) lambda-build worker-build
	$(PY) -m pytest -q --ignore=tests/finetune
	$(MAKE) --no-print-directory finetune-test

test-fast: $(STAMPS)/core
	$(PY) -m pytest -q -m "not model and not finetune" tests/core tests/bridge tests/endpoints

bench: $(BENCH_TARGETS)
	@echo "figures recorded under bench/results/"

bench-core: $(STAMPS)/core $(LITELLM_VENV)/.installed
	$(PY) bench/core_bench.py --litellm-python $(LITELLM_VENV)/bin/python

clean:
	rm -rf $(VENV) .aws-sam cloudflare/dist cloudflare/node_modules cloudflare/python_modules .pytest_cache
