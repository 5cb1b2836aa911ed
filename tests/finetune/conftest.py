"""Fixtures of the fine-tuning tests: the real SmolLM2-135M weights (dequantised once per session) and tiny random
models with its real tokenizer, for the tests that need a model but not a good one.

These tests run in the fine-tuning venv (``make finetune-test``: torch, Axolotl, llama-cpp-python). In a venv
without that stack each module is reported as skipped, with the reason, instead of being imported (the main
run passes ``--ignore=tests/finetune``; ``make finetune-test`` runs them).
"""

from __future__ import annotations

import importlib.util
import io
import os
import shutil
from pathlib import Path

import pytest

NOT_HERE = ("the fine-tuning stack (lmstudio_finetune, torch, Axolotl) is not installed in this venv: "
            "run `make finetune-test`")

if importlib.util.find_spec("lmstudio_finetune") is None:  # not the fine-tuning venv

    class _SkippedModule(pytest.Item):
        def runtest(self) -> None:
            pytest.skip(NOT_HERE)

    class _NotInThisVenv(pytest.File):
        """A test module of this directory, not imported (its imports need the stack): one visible skip."""

        def collect(self):
            yield _SkippedModule.from_parent(self, name=self.path.stem)

    def pytest_pycollect_makemodule(module_path, parent):
        return _NotInThisVenv.from_parent(parent, path=module_path)

# No model hub and no telemetry, whether run by `make finetune-test` or by hand (children inherit these).
for _key, _value in {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
                     "AXOLOTL_DO_NOT_TRACK": "1", "WANDB_MODE": "disabled"}.items():
    os.environ.setdefault(_key, _value)

_TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "chat_template.jinja")


@pytest.fixture
def console():
    """A rich Console writing to a buffer (``console.file.getvalue()``), wide enough to keep lines whole."""
    from rich.console import Console

    return Console(file=io.StringIO(), width=200, force_terminal=False, soft_wrap=True)


@pytest.fixture(scope="session")
def smollm2_gguf() -> Path:
    from lmstudio_finetune import smollm2_gguf_path

    return smollm2_gguf_path()


@pytest.fixture(scope="session")
def base_cache(tmp_path_factory) -> Path:
    """One dequantisation cache for the session: the tuner and the fixtures share the SmolLM2 directory."""
    return tmp_path_factory.mktemp("base-models")


@pytest.fixture(scope="session")
def smollm2_dir(smollm2_gguf, base_cache) -> Path:
    from lmstudio_finetune.gguf_import import dequantize_gguf

    return dequantize_gguf(smollm2_gguf, base_cache)


def _save_tiny(model, directory: Path, tokenizer_dir: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(directory, safe_serialization=True)
    for name in _TOKENIZER_FILES:
        if (tokenizer_dir / name).is_file():
            shutil.copy(tokenizer_dir / name, directory / name)
    return directory


@pytest.fixture(scope="session")
def tiny_llama_dir(smollm2_dir, tmp_path_factory) -> Path:
    """A 2-layer random Llama with SmolLM2's tokenizer: trains, converts and loads in seconds."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=49152, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512,
                         tie_word_embeddings=True, bos_token_id=1, eos_token_id=2, pad_token_id=2)
    return _save_tiny(LlamaForCausalLM(config), tmp_path_factory.mktemp("tiny-llama"), smollm2_dir)


@pytest.fixture
def tiny_llama_copy(tiny_llama_dir, tmp_path) -> Path:
    """A private copy of the tiny Llama, for tests that damage it."""
    return Path(shutil.copytree(tiny_llama_dir, tmp_path / "tiny-llama"))
