"""create_axolotl_config: a LoRA config that Axolotl's own schema accepts, for CPU here and for CUDA on a GPU host."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from lmstudio_agent.errors import AgentError, ErrorCode
from lmstudio_finetune import LMStudioFineTuner
from lmstudio_finetune.axolotl_config import validate_with_axolotl

pytestmark = pytest.mark.finetune


@pytest.fixture
def dataset(tmp_path) -> Path:
    path = tmp_path / "data.jsonl"
    path.write_text('{"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]}\n')
    return path


def load(path: Path) -> dict:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def test_cpu_config_for_local_weights(tmp_path, dataset, smollm2_dir, console):
    tuner = LMStudioFineTuner(str(smollm2_dir), str(tmp_path / "out"), device="cpu", console=console)
    path = tuner.create_axolotl_config(dataset)
    assert path == tuner.output_dir / "axolotl_config.yml"
    config = load(path)
    assert config["base_model"] == str(smollm2_dir.resolve())
    assert config["adapter"] == "lora"
    assert config["lora_target_modules"] == ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj",
                                             "down_proj"]
    # The reference's defaults.
    assert (config["num_epochs"], config["learning_rate"], config["micro_batch_size"],
            config["gradient_accumulation_steps"]) == (3, 2e-5, 4, 4)
    # CPU: Axolotl's Triton LoRA kernels allocate on CUDA, so they are off; no bf16.
    assert not (config["lora_mlp_kernel"] or config["lora_qkv_kernel"] or config["lora_o_kernel"])
    assert config["bf16"] is False and config["optimizer"] == "adamw_torch"
    assert config["datasets"] == [{"path": str(dataset.resolve()), "type": "chat_template",
                                   "field_messages": "messages"}]
    assert config["output_dir"] == str(tuner.adapter_dir.resolve())
    validate_with_axolotl(config)  # the written file passes Axolotl's schema again


def test_gpu_config_for_the_reference_default(tmp_path, dataset, console):
    tuner = LMStudioFineTuner(output_dir=str(tmp_path / "out"), device="cuda", console=console)
    config = load(tuner.create_axolotl_config(dataset, num_epochs=5, learning_rate=1e-5, batch_size=8))
    assert config["base_model"] == "LiquidAI/LFM2-350M"
    assert config["lora_target_modules"] == ["q_proj", "k_proj", "v_proj", "out_proj", "in_proj", "w1", "w2", "w3"]
    assert (config["num_epochs"], config["learning_rate"], config["micro_batch_size"]) == (5, 1e-5, 8)
    assert config["bf16"] is True and config["attn_implementation"] == "sdpa"
    assert config["optimizer"] == "adamw_torch_fused"
    assert config["eot_tokens"] == ["<|im_end|>"]
    assert config["lora_qkv_kernel"] is False  # see test_models: Axolotl's kernels cannot patch LFM2
    assert "cannot be trained" in console.file.getvalue()


def test_gpu_config_turns_kernels_on_where_axolotl_supports_them(tmp_path, dataset, tiny_llama_dir, console):
    tuner = LMStudioFineTuner(str(tiny_llama_dir), str(tmp_path / "out"), device="cuda", console=console)
    config = load(tuner.create_axolotl_config(dataset))
    assert config["lora_mlp_kernel"] and config["lora_qkv_kernel"] and config["lora_o_kernel"]


def test_knobs_and_overrides(tmp_path, dataset, tiny_llama_dir, console):
    tuner = LMStudioFineTuner(str(tiny_llama_dir), str(tmp_path / "out"), device="cpu", console=console)
    config = load(tuner.create_axolotl_config(
        dataset, max_steps=7, lora_r=4, sequence_len=128,
        overrides={"lr_scheduler": "constant", "warmup_ratio": None, "save_total_limit": 2},
    ))
    assert (config["max_steps"], config["lora_r"], config["lora_alpha"], config["sequence_len"]) == (7, 4, 8, 128)
    assert config["lr_scheduler"] == "constant" and "warmup_ratio" not in config
    assert config["save_total_limit"] == 2


def test_missing_dataset_writes_nothing(tmp_path, tiny_llama_dir, console):
    tuner = LMStudioFineTuner(str(tiny_llama_dir), str(tmp_path / "out"), device="cpu", console=console)
    with pytest.raises(AgentError) as caught:
        tuner.create_axolotl_config(tmp_path / "missing.jsonl")
    assert caught.value.code is ErrorCode.FINE_TUNING_FAILED
    assert "dataset not found" in caught.value.message
    assert tuner.last_error is caught.value
    assert not (tuner.output_dir / "axolotl_config.yml").exists()
    empty = tmp_path / "empty.jsonl"
    empty.touch()
    with pytest.raises(AgentError, match="dataset is empty"):
        tuner.create_axolotl_config(empty)


@pytest.mark.parametrize(("overrides", "problem"), [
    ({"adapter": "lorax"}, "lorax"),
    ({"learning_rate": "fast"}, "learning_rate"),
])
def test_a_config_axolotl_rejects_is_not_written(tmp_path, dataset, tiny_llama_dir, console, overrides, problem):
    tuner = LMStudioFineTuner(str(tiny_llama_dir), str(tmp_path / "out"), device="cpu", console=console)
    existing = tuner.output_dir / "axolotl_config.yml"
    existing.parent.mkdir(parents=True)
    existing.write_text("previous: true\n")
    with pytest.raises(AgentError) as caught:
        tuner.create_axolotl_config(dataset, overrides=overrides)
    assert caught.value.code is ErrorCode.FINE_TUNING_FAILED
    assert caught.value.message.startswith("Axolotl rejected the config")
    assert problem in caught.value.message
    assert existing.read_text() == "previous: true\n"
    assert [p.name for p in existing.parent.iterdir()] == ["axolotl_config.yml"]


@pytest.mark.parametrize("bad", [{"num_epochs": 0}, {"learning_rate": -1.0}, {"batch_size": 0}])
def test_nonsense_numbers_are_refused_before_axolotl(tmp_path, dataset, tiny_llama_dir, console, bad):
    tuner = LMStudioFineTuner(str(tiny_llama_dir), str(tmp_path / "out"), device="cpu", console=console)
    with pytest.raises(AgentError) as caught:
        tuner.create_axolotl_config(dataset, **bad)
    assert caught.value.code is ErrorCode.INVALID_REQUEST
    assert next(iter(bad)) in caught.value.message


def test_the_hyperparameters_have_one_list_and_one_set_of_defaults():
    import dataclasses
    import inspect

    from lmstudio_finetune.axolotl_config import Hyperparameters

    parameters = inspect.signature(LMStudioFineTuner.create_axolotl_config).parameters
    knobs = {name: p.default for name, p in parameters.items()
             if name not in ("self", "dataset_path", "overrides", "config_file")}
    assert knobs == {f.name: f.default for f in dataclasses.fields(Hyperparameters)}
