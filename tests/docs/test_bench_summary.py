"""`make bench` prints each figure beside its target and marks misses (bench/summary.py)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SUMMARY = ROOT / "bench" / "summary.py"


def summary(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SUMMARY), *args], capture_output=True, text=True, timeout=60)


def test_the_committed_figures_render_with_their_machine_and_targets() -> None:
    done = summary(str(ROOT / "bench" / "results"))
    assert done.returncode == 0, done.stderr
    for name in ("core", "gateway_tokens", "bridge", "lambda"):
        assert f"\n{name}  (" in "\n" + done.stdout
    assert "2 CPUs" in done.stdout and ">= 0.95" in done.stdout and "<= 1.0 ms" in done.stdout


def test_a_missed_target_is_marked_beside_its_figure(tmp_path) -> None:
    core = json.loads((ROOT / "bench" / "results" / "core.json").read_text())
    core["loop_overhead_per_round"]["p50_ms"] = 1.07
    core["machine"] = {"cpu": "Test CPU", "cpus": 2, "python": "3.11.7"}
    (tmp_path / "core.json").write_text(json.dumps(core))
    done = summary(str(tmp_path))
    assert done.returncode == 0, done.stderr
    [line] = [line for line in done.stdout.splitlines() if "loop overhead per round, p50" in line]
    assert "1.070 ms" in line and "<= 1.0 ms" in line and line.rstrip().endswith("MISSED")
    assert "Test CPU, 2 CPUs" in done.stdout
    assert "1 of 3 targets MISSED" in done.stdout
