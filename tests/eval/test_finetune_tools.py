"""``lmstudio-agent finetune-tools`` end to end on CPU, kept short: training rows from the corpus and the suite, the
base model measured, a 2-step LoRA run through the real finetune/ pipeline (Axolotl) in the fine-tuning venv, the
adapter exported as a GGUF LoRA file with its recipe, served by gateway-model on the base model and measured on the
same held-out and unseen-tool tasks.

It proves the loop, not the figures (those come from `make finetune-tools`, recorded in reports/eval/)."""

from __future__ import annotations

import json
import subprocess

import pytest
from typer.testing import CliRunner

from lmstudio_eval.cli import eval_app
from lmstudio_eval.finetuning.cli import CURVE_FILE, finetune_python
from lmstudio_eval.report import PLOT_FILE, REPORT_FILE
from lmstudio_eval.finetuning.data import CHAT_CHECKS

pytestmark = [pytest.mark.finetune, pytest.mark.model, pytest.mark.slow]


@pytest.fixture(scope="module")
def ft_python():
    python = finetune_python(None)
    found = subprocess.run([str(python), "-c", "import lmstudio_finetune, axolotl"], capture_output=True, timeout=120)
    if found.returncode != 0:
        pytest.skip(f"the fine-tuning stack is not installed for {python} (make finetune-deps)")
    return python


def test_finetune_tools_trains_exports_an_adapter_and_measures_before_and_after(ft_python, tmp_path):
    report_dir, output_dir = tmp_path / "report", tmp_path / "models"
    adapter = tmp_path / "adapters" / "tiny-tools.lora.gguf"
    result = CliRunner().invoke(eval_app, [
        "finetune-tools", "--corpus-tasks", "6", "--suite-tasks", "2", "--eval-tasks", "3", "--chat-keep", "2",
        "--max-steps", "2", "--batch-size", "2", "--device", "cpu", "--finetune-python", str(ft_python),
        "--name", "tiny-tools", "--adapter-out", str(adapter), "--output-dir", str(output_dir),
        "--report-dir", str(report_dir), "--timeout", "1200"])
    assert result.exit_code == 0, result.output

    report = json.loads((report_dir / REPORT_FILE).read_text())
    assert set(report["modes"]) == {f"constrained ({who}) · {split}" for who in ("base", "fine-tuned")
                                    for split in ("heldout", "unseen")}
    assert all(summary["tasks"] == 3 for summary in report["modes"].values())
    assert [p["step"] for p in report["training_losses"]] == [1, 2]
    assert report["training"]["rows"] == 10  # 6 corpus tasks + 2 suite tasks + 2 plain-chat answers of the base model
    assert adapter.read_bytes()[:4] == b"GGUF"
    recipe = json.loads(adapter.with_suffix("").with_suffix(".json").read_text())
    assert recipe["data"]["generator"] and recipe["training"]["steps"] == 2 and recipe["adapter_sha256"]
    assert [c["question"] for c in report["chat"]] == list(CHAT_CHECKS)
    # Every check question is asked of both models (None = not asked). What a 2-step adapter answers is not
    # asserted: it may well be nothing; the base model answers in words.
    assert all(isinstance(c["before"], str) and isinstance(c["after"], str) for c in report["chat"])
    assert any(c["before"].strip() for c in report["chat"])
    for name in (PLOT_FILE, CURVE_FILE):
        assert (report_dir / name).read_bytes()[:4] == b"\x89PNG"
    rows = [json.loads(line) for line in (report_dir / "training_rows.jsonl").read_text().splitlines()]
    assert all(row["messages"][-1]["role"] == "assistant" for row in rows)
    final = json.loads(result.stdout.strip().splitlines()[-1])
    assert final["tasks"] == 3 and "constrained (fine-tuned) · unseen" in final["modes"]
