"""The `lmstudio-finetune` console script: the whole pipeline from a JSONL file, and its answers to bad input."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = str(Path(sys.executable).parent / "lmstudio-finetune")


def cli(*args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    env = {**os.environ, "PATH": str(Path(sys.executable).parent) + os.pathsep + "/usr/bin:/bin"}  # no `lms`
    return subprocess.run([SCRIPT, *args], capture_output=True, text=True, timeout=timeout, env=env)


def test_bad_row_exits_2_naming_it_before_any_training(tmp_path):
    data = tmp_path / "rows.jsonl"
    data.write_text('{"instruction": "q", "response": "a"}\n\n{"instruction": "q"}\n')
    done = cli("run", "--data", str(data), "--output-dir", str(tmp_path / "out"), timeout=60)
    assert done.returncode == 2
    # Counted as an editor counts lines (the blank line included), from 1.
    assert f"INVALID_REQUEST: line 3 of {data} (row 2): response: Field required" in done.stderr.replace("\n", "")
    assert not (tmp_path / "out").exists()


def test_unreadable_jsonl_exits_2_naming_the_line(tmp_path):
    data = tmp_path / "rows.jsonl"
    data.write_text('{"instruction": "q", "response": "a"}\nnot json\n')
    done = cli("prepare", "--data", str(data), "--output-dir", str(tmp_path / "out"), timeout=60)
    assert done.returncode == 2
    assert "line 2: not valid JSON" in done.stderr


def test_prepare_writes_the_axolotl_jsonl(tmp_path):
    data = tmp_path / "rows.jsonl"
    data.write_text('{"instruction": "q", "response": "a"}\n')
    done = cli("prepare", "--data", str(data), "--output-dir", str(tmp_path / "out"), timeout=60)
    assert done.returncode == 0, done.stderr
    written = Path(done.stdout.strip())
    assert json.loads(written.read_text())["messages"][1] == {"role": "assistant", "content": "a",
                                                               "tool_call_id": None}


@pytest.mark.finetune
@pytest.mark.slow
def test_run_goes_from_jsonl_to_a_gguf_and_says_how_to_load_it(tmp_path, tiny_llama_dir):
    data = tmp_path / "rows.jsonl"
    data.write_text("\n".join(json.dumps(row) for row in [
        {"instruction": "Say yes.", "response": "Yes."},
        {"messages": [{"role": "user", "content": "Say no."}, {"role": "assistant", "content": "No."}]},
    ]) + "\n")
    out = tmp_path / "out"
    done = cli("run", "--data", str(data), "--base-model", str(tiny_llama_dir), "--output-dir", str(out),
               "--name", "tiny-cli", "--device", "cpu", "--max-steps", "2", "--batch-size", "1", "--grad-accum", "1",
               "--sequence-len", "128", "--learning-rate", "1e-3", "--quant", "Q8_0", "--set", "lr_scheduler=constant")
    assert done.returncode == 0, done.stderr[-3000:]
    assert f"GGUF ready: {out / 'tiny-cli.gguf'}" in done.stdout
    assert f"lms import {out / 'tiny-cli-Q8_0.gguf'} --user-repo local/tiny-cli --copy -y" in done.stdout
    assert (out / "tiny-cli.gguf").is_file() and (out / "tiny-cli-Q8_0.gguf").is_file()
    assert "Training done" in done.stderr and list((out / "logs").glob("train-*.log"))
