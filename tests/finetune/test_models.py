"""Base-model mapping and LoRA targets, checked against the real transformers architectures and Axolotl's kernels."""

from __future__ import annotations

import inspect
import json

import pytest
from lmstudio_agent.errors import AgentError, ErrorCode
from lmstudio_finetune import DEFAULT_BASE_MODEL, LMStudioFineTuner, resolve_base_model
from lmstudio_finetune.models import KERNEL_READY_TYPES, LORA_TARGET_MODULES, lora_targets


def test_reference_default_maps_to_the_trainable_lfm2():
    assert DEFAULT_BASE_MODEL == "lmstudio-community/LFM2-350M-Instruct-GGUF"
    tuner = LMStudioFineTuner()
    assert (tuner.base_model, str(tuner.output_dir)) == (DEFAULT_BASE_MODEL, "fine-tuned-models")
    resolved = tuner.resolved
    assert (resolved.source, resolved.kind, resolved.model_type) == ("LiquidAI/LFM2-350M", "hub", "lfm2")
    assert "cannot be trained" in resolved.note


def test_local_directory_and_hub_ids(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "qwen2"}))
    local = resolve_base_model(str(tmp_path))
    assert (local.source, local.kind, local.model_type) == (str(tmp_path.resolve()), "directory", "qwen2")
    hub = resolve_base_model("LiquidAI/LFM2-1.2B")
    assert (hub.source, hub.kind, hub.model_type) == ("LiquidAI/LFM2-1.2B", "hub", "lfm2")
    assert resolve_base_model("someone/some-model").model_type is None


@pytest.mark.parametrize(("name", "problem"), [
    ("someone/Other-Model-GGUF", "GGUF repository, which cannot be trained"),
    ("./no/such/dir", "not found"),
    ("/no/such/model.gguf", "GGUF file not found"),
    ("", "empty"),
])
def test_untrainable_names_are_refused(name, problem):
    with pytest.raises(AgentError) as caught:
        resolve_base_model(name)
    assert caught.value.code is ErrorCode.INVALID_REQUEST
    assert problem in caught.value.message


def test_directory_without_config_is_refused(tmp_path):
    with pytest.raises(AgentError, match="no config.json"):
        resolve_base_model(str(tmp_path))


def test_smollm2_alias_is_the_packaged_gguf(smollm2_gguf):
    resolved = resolve_base_model("smollm2")
    assert resolved.kind == "gguf" and resolved.source == str(smollm2_gguf)
    assert smollm2_gguf.stat().st_size > 50_000_000


def test_target_keys():
    assert lora_targets("lfm2") == {"lora_target_modules": ["q_proj", "k_proj", "v_proj", "out_proj", "in_proj",
                                                            "w1", "w2", "w3"]}
    assert lora_targets("llama")["lora_target_modules"][-3:] == ["gate_proj", "up_proj", "down_proj"]
    assert lora_targets(None) == {"lora_target_linear": True}


def _linear_leaf_names(model) -> set[str]:
    import torch.nn as nn

    return {name.rsplit(".", 1)[-1] for name, module in model.named_modules()
            if isinstance(module, nn.Linear) and ".layers." in name}


@pytest.mark.finetune
def test_lfm2_targets_cover_every_linear_layer_of_the_real_architecture():
    from peft import LoraConfig, get_peft_model
    from transformers import Lfm2Config, Lfm2ForCausalLM

    config = Lfm2Config(vocab_size=512, hidden_size=64, intermediate_size=128, num_hidden_layers=4,
                        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=128,
                        layer_types=["conv", "full_attention", "conv", "full_attention"])
    model = Lfm2ForCausalLM(config)
    targets = LORA_TARGET_MODULES["lfm2"]
    assert _linear_leaf_names(model) == set(targets)  # attention, short convolution and feed-forward, no more
    peft_model = get_peft_model(model, LoraConfig(r=4, target_modules=targets))
    adapted = {name.split(".lora_A")[0].rsplit(".", 1)[-1] for name, _ in peft_model.named_parameters()
               if ".lora_A" in name}
    assert adapted == set(targets)


@pytest.mark.finetune
def test_llama_targets_cover_every_linear_layer(tiny_llama_dir):
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_llama_dir)
    assert _linear_leaf_names(model) == set(LORA_TARGET_MODULES["llama"])


@pytest.mark.finetune
def test_axolotl_lora_kernels_cannot_patch_lfm2_attention():
    """Why an LFM2 config keeps Axolotl's fused LoRA kernels off even on CUDA: its QKV/O rewrite needs code that
    LFM2's attention does not have (q_proj inside q_layernorm, out_proj not o_proj), so `axolotl train` would stop
    on an AssertionError. Llama's attention has it."""
    from axolotl.monkeypatch.lora_kernels import ORIGINAL_O_CODE, QKV_PATCHES, detab_code
    from transformers.models.lfm2.modeling_lfm2 import Lfm2Attention
    from transformers.models.llama.modeling_llama import LlamaAttention

    def patchable(attention_cls) -> bool:
        source, _ = detab_code(inspect.getsource(attention_cls.forward))
        return any(original in source for original, _ in QKV_PATCHES) and ORIGINAL_O_CODE in source

    assert not patchable(Lfm2Attention)
    assert patchable(LlamaAttention)
    assert "lfm2" not in KERNEL_READY_TYPES and "llama" in KERNEL_READY_TYPES
