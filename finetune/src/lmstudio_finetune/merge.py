"""Merge a LoRA adapter into its base model (``python -m lmstudio_finetune.merge ADAPTER_DIR OUT_DIR``).

Runs as a child process so the merged model's memory is returned when it ends. The base model is the one the
adapter names (``base_model_name_or_path``); the tokenizer is the adapter directory's (Axolotl saves it there),
else the base model's.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

__all__ = ["main", "merge_adapter"]


def merge_adapter(adapter_dir: Path, out_dir: Path) -> None:
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    base = json.loads((adapter_dir / "adapter_config.json").read_text(encoding="utf-8"))["base_model_name_or_path"]
    model = AutoModelForCausalLM.from_pretrained(base, dtype="auto", device_map="cpu")
    if model.dtype not in (torch.float32, torch.float16, torch.bfloat16):
        model = model.float()
    merged = PeftModel.from_pretrained(model, str(adapter_dir)).merge_and_unload()
    merged.save_pretrained(out_dir, safe_serialization=True)
    tokenizer_source = adapter_dir if (adapter_dir / "tokenizer_config.json").is_file() else base
    AutoTokenizer.from_pretrained(tokenizer_source).save_pretrained(out_dir)
    print(f"merged {adapter_dir} into {base} -> {out_dir}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m lmstudio_finetune.merge")
    parser.add_argument("adapter_dir", type=Path)
    parser.add_argument("out_dir", type=Path)
    args = parser.parse_args(argv)
    merge_adapter(args.adapter_dir, args.out_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
