"""The training half of ``finetune-tools``, run by the fine-tuning environment's Python (torch, Axolotl):

    python path/to/lmstudio_eval/finetuning/job.py JOB.json

JOB.json names the rows, the base model and the knobs; the job runs the ``finetune/`` pipeline
(:class:`lmstudio_finetune.LMStudioFineTuner`: LoRA with Axolotl -> merge -> GGUF -> quantize; or, with
``"export": "lora"``, LoRA -> one GGUF LoRA adapter file, ``job["lora_file"]``, that llama.cpp applies to the base
model) and writes RESULT.json (``job["result"]``): the files, the losses per step and the time taken, or the error.
The fine-tuning stack lives in its own environment (its pins clash with the rest), hence a child process.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

DEFAULTS: dict[str, Any] = {
    "base_model": "smollm2",
    "device": "auto",
    "name": "smollm2-tools",
    "num_epochs": 1,
    "learning_rate": 1e-3,
    "batch_size": 4,
    "gradient_accumulation_steps": 1,
    "max_steps": None,
    "lora_r": 16,
    "lora_dropout": 0.0,
    "sequence_len": 1024,
    "quantizations": ["Q8_0"],
    "overrides": {"lr_scheduler": "cosine"},
    "export": "merged",
    "lora_outtype": "q8_0",
}


def run_job(job: dict[str, Any]) -> dict[str, Any]:
    from lmstudio_finetune import LMStudioFineTuner

    settings = {**DEFAULTS, **job}
    rows = [json.loads(line) for line in Path(settings["rows"]).read_text(encoding="utf-8").splitlines() if line.strip()]
    started = time.monotonic()
    tuner = LMStudioFineTuner(settings["base_model"], settings["output_dir"], device=settings["device"],
                              quantizations=settings["quantizations"], train_timeout_s=settings.get("train_timeout_s"))
    dataset = tuner.prepare_dataset(rows, "tool_calls_training.jsonl")
    config = tuner.create_axolotl_config(
        dataset, settings["num_epochs"], settings["learning_rate"], settings["batch_size"],
        settings["gradient_accumulation_steps"], max_steps=settings["max_steps"], lora_r=settings["lora_r"],
        lora_dropout=settings["lora_dropout"], sequence_len=settings["sequence_len"], overrides=settings["overrides"],
    )
    if not tuner.run_fine_tuning(config, use_lm_studio_cli=False):
        return _failure(tuner, "training")
    training = tuner.last_training
    assert training is not None  # set by every run_fine_tuning
    trained = time.monotonic()
    if settings["export"] == "lora":
        from lmstudio_finetune.export import ExportError, export_lora_gguf

        try:
            lora = export_lora_gguf(tuner.adapter_dir, Path(settings["lora_file"]), log_path=Path(str(training.log_path)),
                                    outtype=settings["lora_outtype"])
        except ExportError as exc:
            return {"ok": False, "stage": "conversion", "code": "GGUF_CONVERSION_FAILED", "error": f"{exc} {exc.tail[-800:]}",
                    "log": str(training.log_path)}
        files = {"LORA": str(lora)}
        gguf = str(lora)
    elif tuner.convert_to_gguf(tuner.adapter_dir, settings["name"], lm_studio_import=False) is None:
        return _failure(tuner, "conversion")
    else:
        assert tuner.last_export is not None  # set by every successful convert_to_gguf
        files = {kind: str(path) for kind, path in tuner.last_export.files.items()}
        gguf = str(tuner.lm_studio_file())
    return {
        "ok": True,
        "rows": len(rows),
        "device": tuner.device,
        "settings": {k: v for k, v in settings.items() if k not in ("rows", "result")},
        "losses": [{"step": step, "loss": loss} for step, loss in training.losses],
        "train_loss": training.train_loss,
        "seconds": {"training": round(trained - started, 1), "convert": round(time.monotonic() - trained, 1)},
        "files": files,
        "gguf": gguf,
        "log": str(training.log_path),
    }


def _failure(tuner: Any, stage: str) -> dict[str, Any]:
    error = tuner.last_error
    return {"ok": False, "stage": stage, "code": error.code.value if error else "FINE_TUNING_FAILED",
            "error": error.message if error else f"{stage} failed",
            "log": (error.details or {}).get("log_path") if error else None}


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python path/to/lmstudio_eval/finetuning/job.py JOB.json", file=sys.stderr)
        return 2
    job = json.loads(Path(args[0]).read_text(encoding="utf-8"))
    try:
        result = run_job(job)
    except Exception as exc:  # the parent reads RESULT.json: every failure must land there, not only in a trace
        code = getattr(getattr(exc, "code", None), "value", "FINE_TUNING_FAILED")
        result = {"ok": False, "stage": "setup", "code": code, "error": f"{type(exc).__name__}: {exc}"}
    Path(job["result"]).write_text(json.dumps(result, indent=2), encoding="utf-8")
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
