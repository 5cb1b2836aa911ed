# Tool-calling evaluation (eval/src/lmstudio_eval): the project's held-out suite on the embedded model.
#
#   make eval                         what users get (auto mode: constrained on the embedded model) + plain baseline
#   make eval EVAL_MODES="all"        plain, native, parsed and constrained (the README's table)
#   make eval EVAL_ARGS="--limit 40"  a quick subset spread over every tool
#   make finetune-tools               fine-tune SmolLM2-135M on the training split, measure before/after
#
# Figures go to $(EVAL_REPORT) (report.json, accuracy.png); the last line printed is the JSON summary.
.PHONY: eval eval-suite finetune-tools

EVAL_MODES ?= auto plain
EVAL_ARGS ?=
EVAL_REPORT ?= reports/eval/latest
FINETUNE_TOOLS_ARGS ?=
FINETUNE_TOOLS_REPORT ?= reports/eval/finetune

eval: $(STAMPS)/core $(STAMPS)/gateway ## tool-calling accuracy on the held-out suite, embedded model (EVAL_MODES=all, EVAL_ARGS="--limit 40")
	$(PY) -m lmstudio_eval eval --embedded $(foreach m,$(EVAL_MODES),--mode $(m)) \
		--report-dir $(EVAL_REPORT) $(EVAL_ARGS)

# Regenerate the suite's JSONL files (package data) from the tools and phrasings; tests/eval checks they match.
eval-suite: $(STAMPS)/core ## regenerate the suite's JSONL files from the tools and phrasings
	$(PY) -m lmstudio_eval.suite

# Training runs in the fine-tuning venv (FT_PY, mk/finetune.mk); serving and measuring in the main one.
finetune-tools: $(STAMPS)/finetune $(STAMPS)/gateway ## fine-tune SmolLM2-135M on the suite's tools, measure before/after
	AXOLOTL_DO_NOT_TRACK=1 WANDB_MODE=disabled HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TRANSFORMERS_OFFLINE=1 \
		$(PY) -m lmstudio_eval finetune-tools --finetune-python $(FT_PY) \
		--report-dir $(FINETUNE_TOOLS_REPORT) $(FINETUNE_TOOLS_ARGS)
