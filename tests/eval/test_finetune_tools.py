"""``lmstudio-agent finetune-tools`` end to end on CPU, kept short: training rows from the suite, the base model
measured, a 2-step LoRA run through the real finetune/ pipeline (Axolotl, merge, GGUF, Q8_0) in the
fine-tuning venv, the fine-tuned GGUF served by gateway-model and measured on the same held-out tasks.

It proves the loop, not the figures (those come from `make finetune-tools`, recorded in reports/eval/)."""

from __future__ import annotations

import json
import subprocess

import pytest
from typer.testing import CliRunner

from lmstudio_eval.cli import eval_app
from lmstudio_eval.finetune_cli import CURVE_FILE, finetune_python
from lmstudio_eval.report import PLOT_FILE, REPORT_FILE
from lmstudio_eval.training import CHAT_CHECKS

pytestmark = [pytest.mark.finetune, pytest.mark.model, pytest.mark.slow]


@pytest.fixture(scope="module")
def ft_python():
    python = finetune_python(None)
    found = subprocess.run([str(python), "-c", "import lmstudio_finetune, axolotl"], capture_output=True, timeout=120)
    if found.returncode != 0:
        pytest.skip(f"the fine-tuning stack is not installed for {python} (make finetune-deps)")
    return python


def test_finetune_tools_trains_converts_and_measures_before_and_after(ft_python, tmp_path):
    report_dir, output_dir = tmp_path / "report", tmp_path / "models"
    result = CliRunner().invoke(eval_app, [
        "finetune-tools", "--train-rows", "8", "--eval-tasks", "3", "--chat-keep", "2", "--max-steps", "2",
        "--batch-size", "2", "--device", "cpu", "--finetune-python", str(ft_python), "--name", "tiny-tools",
        "--output-dir", str(output_dir), "--report-dir", str(report_dir), "--timeout", "1200"])
    assert result.exit_code == 0, result.output

    report = json.loads((report_dir / REPORT_FILE).read_text())
    assert set(report["modes"]) == {"constrained (base)", "constrained (fine-tuned)"}
    assert all(summary["tasks"] == 3 for summary in report["modes"].values())
    assert [p["step"] for p in report["training_losses"]] == [1, 2]
    assert report["training"]["rows"] == 10  # 8 tool calls + 2 plain-chat answers of the base model
    assert (output_dir / "tiny-tools-Q8_0.gguf").is_file()
    assert [c["question"] for c in report["chat"]] == list(CHAT_CHECKS)
    assert all(c["before"] and c["after"] for c in report["chat"])
    for name in (PLOT_FILE, CURVE_FILE):
        assert (report_dir / name).read_bytes()[:4] == b"\x89PNG"
    rows = [json.loads(line) for line in (report_dir / "training_rows.jsonl").read_text().splitlines()]
    assert rows[0]["messages"][0]["role"] == "system" and rows[0]["messages"][-1]["role"] == "assistant"
    final = json.loads(result.stdout.strip().splitlines()[-1])
    assert final["tasks"] == 3 and "constrained (fine-tuned)" in final["modes"]
