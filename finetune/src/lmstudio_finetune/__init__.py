"""Fine-tune a small model with Axolotl (LoRA), convert it to GGUF with llama.cpp and load it into LM Studio.

``from lmstudio_finetune import LMStudioFineTuner`` is the API reference's class. Importing this package is light:
torch, transformers and Axolotl are imported only by the steps that need them.
"""

from .dataset import ChatMessage, ChatRow, DatasetError, FunctionTool, read_jsonl
from .export import ExportResult
from .models import DEFAULT_BASE_MODEL, GGUF_SOURCES, LORA_TARGET_MODULES, resolve_base_model, smollm2_gguf_path
from .tuner import LMStudioFineTuner, TrainingRun

__all__ = [
    "DEFAULT_BASE_MODEL",
    "GGUF_SOURCES",
    "LORA_TARGET_MODULES",
    "ChatMessage",
    "ChatRow",
    "DatasetError",
    "ExportResult",
    "FunctionTool",
    "LMStudioFineTuner",
    "TrainingRun",
    "read_jsonl",
    "resolve_base_model",
    "smollm2_gguf_path",
]
