"""The Axolotl LoRA config: built for a base model and a device, checked with Axolotl's own schema, written as YAML."""

from __future__ import annotations

import copy
import dataclasses
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import yaml
from lmstudio_agent.errors import AgentError, ErrorCode

from .models import KERNEL_READY_TYPES, lora_targets

__all__ = ["Device", "Hyperparameters", "build_config", "validate_with_axolotl", "write_yaml_atomic"]

Device = Literal["cpu", "cuda"]


@dataclasses.dataclass(frozen=True)
class Hyperparameters:
    """What one LoRA run is tuned with: the one list of the fine-tuner's knobs and their defaults
    (:meth:`LMStudioFineTuner.create_axolotl_config` takes them as arguments). Nonsense numbers are refused.

    Args:
        num_epochs: Passes over the dataset.
        learning_rate: The optimizer's peak learning rate.
        batch_size: Rows per micro-batch.
        gradient_accumulation_steps: Micro-batches per optimizer step.
        max_steps: Stop after this many optimizer steps (None: run every epoch).
        lora_r: The LoRA rank.
        lora_alpha: The LoRA scaling (None: twice the rank).
        lora_dropout: Dropout on the LoRA layers.
        sequence_len: Tokens per row; longer rows are cut.
    """

    num_epochs: int = 3
    learning_rate: float = 2e-5
    batch_size: int = 4
    gradient_accumulation_steps: int = 4
    max_steps: int | None = None
    lora_r: int = 16
    lora_alpha: int | None = None
    lora_dropout: float = 0.05
    sequence_len: int = 2048

    def __post_init__(self) -> None:
        for name in ("num_epochs", "learning_rate", "batch_size", "gradient_accumulation_steps", "lora_r",
                     "sequence_len", "max_steps"):
            value = getattr(self, name)
            if value is not None and not value > 0:
                raise AgentError(ErrorCode.INVALID_REQUEST, f"{name} must be positive, got {value!r}")


def build_config(
    *,
    base_model: str,
    model_type: str | None,
    dataset_path: Path,
    output_dir: Path,
    prepared_dir: Path,
    device: Device,
    hyperparameters: Hyperparameters,
    overrides: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """A LoRA SFT config for Axolotl on the project's chat-template JSONL."""
    h = hyperparameters
    on_gpu = device == "cuda"
    # Axolotl's fused LoRA kernels are Triton (CUDA only) and patch only llama-like blocks (see models.py).
    kernels = on_gpu and model_type in KERNEL_READY_TYPES
    config: dict[str, Any] = {
        "base_model": base_model,
        "adapter": "lora",
        "lora_r": h.lora_r,
        "lora_alpha": h.lora_alpha if h.lora_alpha is not None else 2 * h.lora_r,
        "lora_dropout": h.lora_dropout,
        **lora_targets(model_type),
        "lora_mlp_kernel": kernels,
        "lora_qkv_kernel": kernels,
        "lora_o_kernel": kernels,
        "datasets": [{"path": str(dataset_path), "type": "chat_template", "field_messages": "messages"}],
        "dataset_prepared_path": str(prepared_dir),
        "val_set_size": 0,
        "output_dir": str(output_dir),
        "sequence_len": h.sequence_len,
        "sample_packing": False,
        "micro_batch_size": h.batch_size,
        "gradient_accumulation_steps": h.gradient_accumulation_steps,
        "num_epochs": h.num_epochs,
        "learning_rate": h.learning_rate,
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
    if h.max_steps is not None:
        config["max_steps"] = h.max_steps
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
