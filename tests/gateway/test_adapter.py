"""The shipped tool-calling adapter (issue 12, section 5): a llama.cpp GGUF LoRA file in the package, with its recipe,
served by default (``--bare`` serves the model without it); it loads on the embedded model and changes what the
model writes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lmstudio_gateway.gguf_info import read_metadata
from lmstudio_gateway.models import ADAPTER_DIR, DEFAULT_ADAPTER_FILE, default_adapter_path, default_model_path
from lmstudio_gateway.server import GatewayConfig

pytestmark = pytest.mark.model

PROMPT = [
    {"role": "system", "content": "Tools, each with what it does and the shape of a call:\n\nGet the weather for a city.\n"
                                  '{"type": "weather", "tool": "get_weather", "arguments": {"city": "..."}}\n\n'
                                  "Reply with one JSON call to the tool that fits the request."},
    {"role": "user", "content": "What's the weather like in Buenos Aires?"},
]


def test_the_adapter_and_its_recipe_are_in_the_package() -> None:
    path = default_adapter_path()
    assert path == ADAPTER_DIR / DEFAULT_ADAPTER_FILE and path.is_file()
    assert path.stat().st_size < 20_000_000  # a few MB
    metadata = read_metadata(path)
    assert metadata.get("general.type") == "adapter" and metadata.get("adapter.type") == "lora"
    recipe = json.loads(path.with_suffix("").with_suffix(".json").read_text(encoding="utf-8"))
    assert recipe["data"]["generator"] and recipe["training"]["steps"] and recipe["adapter_sha256"]


def test_the_embedded_model_gets_the_adapter_when_asked_and_never_another_model(tmp_path: Path) -> None:
    assert GatewayConfig(api_key="k").resolved_lora_path() == default_adapter_path()  # the default
    assert GatewayConfig(api_key="k", bare=True).resolved_lora_path() is None
    other = tmp_path / "other.gguf"
    other.write_bytes(b"GGUF" + b"\0" * 16)
    assert GatewayConfig(api_key="k", model_path=other, bare=False).resolved_lora_path() is None
    assert GatewayConfig(api_key="k", model_path=other, lora_path=default_adapter_path()).resolved_lora_path() \
        == default_adapter_path()


def test_the_adapter_loads_and_changes_the_models_output() -> None:
    from llama_cpp import Llama

    def reply(lora: Path | None) -> str:
        model = Llama(model_path=str(default_model_path()), n_ctx=1024, verbose=False, seed=0,
                      **({"lora_path": str(lora)} if lora else {}))
        try:
            out = model.create_chat_completion(messages=PROMPT, max_tokens=40, temperature=0.0)
            return out["choices"][0]["message"]["content"] or ""
        finally:
            model.close()

    bare, tuned = reply(None), reply(default_adapter_path())
    assert tuned and tuned != bare
