"""run_fine_tuning's failure paths, each through the real Axolotl: False, FINE_TUNING_FAILED, the log's tail."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest
import yaml
from lmstudio_agent.errors import ErrorCode
from lmstudio_finetune import LMStudioFineTuner

pytestmark = pytest.mark.finetune

ROWS = [{"instruction": "Say yes.", "response": "Yes."}, {"instruction": "Say no.", "response": "No."}]


@pytest.fixture
def tuner(tmp_path, tiny_llama_copy, console) -> LMStudioFineTuner:
    return LMStudioFineTuner(str(tiny_llama_copy), str(tmp_path / "out"), device="cpu", console=console)


@pytest.fixture
def config_path(tuner) -> Path:
    dataset = tuner.prepare_dataset(ROWS)
    return tuner.create_axolotl_config(dataset, batch_size=1, gradient_accumulation_steps=1, max_steps=2,
                                       sequence_len=128)


def train_logs(tuner) -> list[Path]:
    return sorted((tuner.output_dir / "logs").glob("train-*.log"))


def test_missing_config(tuner, tmp_path, console):
    assert tuner.run_fine_tuning(tmp_path / "nope.yml") is False
    assert tuner.last_error.code is ErrorCode.FINE_TUNING_FAILED
    assert "config not found" in tuner.last_error.message
    assert "FINE_TUNING_FAILED" in console.file.getvalue()


def test_config_axolotl_rejects_never_starts_training(tuner, config_path):
    config = yaml.safe_load(config_path.read_text())
    config["adapter"] = "lorax"
    config_path.write_text(yaml.safe_dump(config))
    assert tuner.run_fine_tuning(config_path) is False
    assert tuner.last_error.message.startswith("Axolotl rejected the config")
    assert "lorax" in tuner.last_error.message
    assert train_logs(tuner) == []  # no child was started


def test_dataset_gone_before_training(tuner, config_path):
    (tuner.output_dir / "training_data.jsonl").unlink()
    assert tuner.run_fine_tuning(config_path) is False
    assert "dataset not found" in tuner.last_error.message


def test_training_process_that_exits_non_zero(tuner, config_path, tiny_llama_copy, console):
    weights = tiny_llama_copy / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:4096])  # Axolotl fails loading the model, a real non-zero exit
    assert tuner.run_fine_tuning(config_path) is False
    error = tuner.last_error
    assert error.code is ErrorCode.FINE_TUNING_FAILED
    assert error.message.startswith("axolotl train exited with status 1: SafetensorError: Error while deserializing")
    assert error.details["returncode"] == 1
    (log,) = train_logs(tuner)
    assert error.details["log_path"] == str(log)
    text = log.read_text(errors="replace")
    assert "axolotl.cli.main train" in text
    tail = error.details["log_tail"]
    assert tail.splitlines()[-1] in text and "SafetensorError" in tail
    printed = console.file.getvalue()
    assert "FINE_TUNING_FAILED" in printed and "incomplete metadata, file not fully covered" in printed
    assert tuner.last_training is None


def test_training_that_runs_past_its_time_limit_is_stopped(tmp_path, tiny_llama_copy, console):
    tuner = LMStudioFineTuner(str(tiny_llama_copy), str(tmp_path / "out"), device="cpu", console=console,
                              train_timeout_s=4)
    dataset = tuner.prepare_dataset(ROWS)
    config = tuner.create_axolotl_config(dataset, batch_size=1, max_steps=2, sequence_len=128)
    assert tuner.run_fine_tuning(config) is False
    assert tuner.last_error.message == "axolotl train timed out"
    (log,) = train_logs(tuner)
    assert "stopped after the 4 s time limit" in log.read_text(errors="replace")
    assert not _children_of(os.getpid())  # the whole process group went


def _children_of(pid: int) -> list[int]:
    children = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid and fields[0] != "Z":
                children.append(int(entry.name))
    return children


def test_interrupt_ends_the_child_group(tmp_path):
    """Ctrl-C while training: the child's process group is ended, not left running."""
    from lmstudio_finetune.process import run_logged

    def interrupt(_text: str) -> None:
        os.kill(os.getpid(), signal.SIGINT)

    # Ctrl-C as an interactive Python sees it: a job started in the background by a non-interactive shell
    # inherits SIGINT ignored, and Python then installs no KeyboardInterrupt handler.
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with pytest.raises(KeyboardInterrupt):
            run_logged(["bash", "-c", "echo started; sleep 60 & wait"], log_path=tmp_path / "x.log",
                       on_output=interrupt)
    finally:
        signal.signal(signal.SIGINT, previous)
    assert not _children_of(os.getpid())
