"""Small facts shared by the pipeline and its child-process entry points (kept apart so ``python -m`` runs clean)."""

from __future__ import annotations

from pathlib import Path

__all__ = ["QUANT_TYPES", "is_adapter_dir"]

# Names as llama.cpp's `llama-quantize` spells them -> llama_ftype constant names in llama_cpp.
QUANT_TYPES: dict[str, str] = {
    "Q8_0": "LLAMA_FTYPE_MOSTLY_Q8_0",
    "Q6_K": "LLAMA_FTYPE_MOSTLY_Q6_K",
    "Q5_K_M": "LLAMA_FTYPE_MOSTLY_Q5_K_M",
    "Q4_K_M": "LLAMA_FTYPE_MOSTLY_Q4_K_M",
    "Q4_0": "LLAMA_FTYPE_MOSTLY_Q4_0",
    "Q3_K_M": "LLAMA_FTYPE_MOSTLY_Q3_K_M",
    "Q2_K": "LLAMA_FTYPE_MOSTLY_Q2_K",
    "IQ2_XXS": "LLAMA_FTYPE_MOSTLY_IQ2_XXS",  # needs an importance matrix: llama.cpp refuses it without one
}


def is_adapter_dir(path: Path) -> bool:
    """A PEFT adapter directory (what Axolotl's LoRA training writes)."""
    return (Path(path) / "adapter_config.json").is_file()
