"""The Axolotl LoRA config: built for a base model and a device, checked with Axolotl's own schema, written as YAML."""

from __future__ import annotations

import copy
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import yaml

from .models import KERNEL_READY_TYPES, lora_targets

__all__ = ["Device", "build_config", "validate_with_axolotl", "write_yaml_atomic"]

Device = Literal["cpu", "cuda"]


def build_config(
    *,
    base_model: str,
    model_type: str | None,
    dataset_path: Path,
    output_dir: Path,
    prepared_dir: Path,
    device: Device,
    num_epochs: int,
    learning_rate: float,
    batch_size: int,
    gradient_accumulation_steps: int,
    max_steps: int | None = None,
    lora_r: int = 16,
    lora_alpha: int | None = None,
    lora_dropout: float = 0.05,
    sequence_len: int = 2048,
    overrides: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """A LoRA SFT config for Axolotl on the project's chat-template JSONL."""
    on_gpu = device == "cuda"
    # Axolotl's fused LoRA kernels are Triton (CUDA only) and patch only llama-like blocks (see models.py).
    kernels = on_gpu and model_type in KERNEL_READY_TYPES
    config: dict[str, Any] = {
        "base_model": base_model,
        "adapter": "lora",
        "lora_r": lora_r,
        "lora_alpha": lora_alpha if lora_alpha is not None else 2 * lora_r,
        "lora_dropout": lora_dropout,
        **lora_targets(model_type),
        "lora_mlp_kernel": kernels,
        "lora_qkv_kernel": kernels,
        "lora_o_kernel": kernels,
        "datasets": [{"path": str(dataset_path), "type": "chat_template", "field_messages": "messages"}],
        "dataset_prepared_path": str(prepared_dir),
        "val_set_size": 0,
        "output_dir": str(output_dir),
        "sequence_len": sequence_len,
        "sample_packing": False,
        "micro_batch_size": batch_size,
        "gradient_accumulation_steps": gradient_accumulation_steps,
        "num_epochs": num_epochs,
        "learning_rate": learning_rate,
        "optimizer": "adamw_torch_fused" if on_gpu else "adamw_torch",
        "lr_scheduler": "cosine",
        "warmup_ratio": 0.05,
        "logging_steps": 1,
        "save_total_limit": 1,
        "seed": 42,
        "bf16": on_gpu,
        "fp16": False,
        "tf32": False,
    }
    if on_gpu:
        config["attn_implementation"] = "sdpa"
    if model_type == "lfm2":
        config["eot_tokens"] = ["<|im_end|>"]  # LFM2's turn end, as in Axolotl's LFM2 example
    if max_steps is not None:
        config["max_steps"] = max_steps
    for key, value in (overrides or {}).items():
        if value is None:
            config.pop(key, None)
        else:
            config[key] = copy.deepcopy(value)
    return config


def validate_with_axolotl(config: Mapping[str, Any]) -> None:
    """Axolotl's own validation of a whole config (what ``axolotl train`` runs first); raises what it raises."""
    from axolotl.cli.config import gpu_capabilities
    from axolotl.utils.config import validate_config
    from axolotl.utils.dict import DictDefault

    capabilities, env_capabilities = gpu_capabilities()
    validate_config(
        DictDefault(copy.deepcopy(dict(config))), capabilities=capabilities, env_capabilities=env_capabilities
    )


def write_yaml_atomic(config: Mapping[str, Any], path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            yaml.safe_dump(dict(config), handle, sort_keys=False)
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    return path
