"""Figures from task results: per-mode summaries, the rich table, the JSON report and the final line."""

from __future__ import annotations

import json
import statistics
import time
from pathlib import Path
from typing import Any
from collections.abc import Iterable, Mapping, Sequence

from .runner import TaskResult

REPORT_FILE = "report.json"
PLOT_FILE = "accuracy.png"


def summarize(results: Sequence[TaskResult]) -> dict[str, Any]:
    """Accuracy, restraint, two-step success, latency and throughput of one mode's results.

    Tool-name and exact accuracy count the tasks that expect a call (a two-step task's first call);
    restraint is the share of ``no_call`` tasks with no tool called; two-step success the share of two-step
    tasks with both calls right; latency is per model round (a call), over every round."""
    n = len(results)
    calls = [r for r in results if r.kind != "no_call"]
    negative = [r for r in results if r.kind == "no_call"]
    two_step = [r for r in results if r.kind == "two_step"]
    latency = [x for r in results for x in (r.call_latencies or [r.latency_s]) if x > 0]
    total_time = sum(r.latency_s for r in results if r.latency_s > 0)
    completion = sum(r.completion_tokens for r in results)
    per_tool: dict[str, dict[str, Any]] = {}
    for tool in sorted({r.expected_tool for r in calls}):
        mine = [r for r in calls if r.expected_tool == tool]
        per_tool[tool] = {"tasks": len(mine), "name_accuracy": _ratio(sum(r.name_ok for r in mine), len(mine)),
                          "exact_accuracy": _ratio(sum(r.exact for r in mine), len(mine))}
    return {
        "tasks": n,
        "call_tasks": len(calls),
        "name_accuracy": _ratio(sum(r.name_ok for r in calls), len(calls)),
        "exact_accuracy": _ratio(sum(r.exact for r in calls), len(calls)),
        "no_call_rate": _ratio(sum(r.called is None for r in calls), len(calls)),
        "terminate_rate": _ratio(sum(r.called == "terminate" for r in calls), len(calls)),
        "no_call_tasks": len(negative),
        "restraint": _ratio(sum(bool(r.restrained) for r in negative), len(negative)) if negative else None,
        "two_step_tasks": len(two_step),
        "two_step_success": _ratio(sum(bool(r.two_step_ok) for r in two_step), len(two_step)) if two_step else None,
        "mean_latency_s": round(statistics.fmean(latency), 3) if latency else 0.0,
        "median_latency_s": round(statistics.median(latency), 3) if latency else 0.0,
        "tokens_per_s": round(completion / total_time, 1) if total_time else 0.0,
        "mean_prompt_tokens": round(statistics.fmean(r.prompt_tokens for r in results), 1) if n else 0.0,
        "mean_completion_tokens": round(statistics.fmean(r.completion_tokens for r in results), 1) if n else 0.0,
        "per_tool": per_tool,
    }


def _ratio(part: int, whole: int) -> float:
    return round(part / whole, 4) if whole else 0.0


def build_report(results_by_mode: Mapping[str, Sequence[TaskResult]], *, suite: str, model: str,
                 base_url: str, extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The JSON report: what ran where, each mode's summary, and every task's result."""
    return {
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "suite": suite,
        "model": model,
        "base_url": base_url,
        **(dict(extra) if extra else {}),
        "modes": {mode: summarize(results) for mode, results in results_by_mode.items()},
        "results": {mode: [r.to_dict() for r in results] for mode, results in results_by_mode.items()},
    }


def final_line(report: Mapping[str, Any]) -> str:
    """One machine-readable JSON line: the first mode's figures at the top level, then every mode's."""
    modes = report["modes"]
    first = next(iter(modes))
    keys = ("tasks", "name_accuracy", "exact_accuracy", "restraint", "two_step_success", "mean_latency_s",
            "tokens_per_s")
    line = {key: modes[first].get(key) for key in keys}
    line["mode"] = first
    line["model"] = report["model"]
    line["modes"] = {mode: {key: s.get(key) for key in keys[1:]} for mode, s in modes.items()}
    return json.dumps(line, separators=(", ", ": "))


def write_report(report: Mapping[str, Any], directory: str | Path) -> Path:
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / REPORT_FILE
    path.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return path


def render_table(report: Mapping[str, Any]):
    """A rich table: one row per mode."""
    from rich.table import Table

    table = Table(title=f"Tool calling on {Path(str(report['suite'])).name} — {report['model']}")
    table.add_column("mode", no_wrap=True)
    for column in ("tasks", "tool name", "name + args", "no call", "restraint", "two-step", "mean latency", "tokens/s"):
        table.add_column(column, justify="right")

    def share(value: Any) -> str:
        return "—" if value is None else f"{value:.1%}"

    for mode, s in report["modes"].items():
        table.add_row(mode, str(s["tasks"]), f"{s['name_accuracy']:.1%}", f"{s['exact_accuracy']:.1%}",
                      f"{s['no_call_rate']:.1%}", share(s.get("restraint")), share(s.get("two_step_success")),
                      f"{s['mean_latency_s']:.2f} s", f"{s['tokens_per_s']:.1f}")
    return table


def failure_samples(results: Iterable[TaskResult], limit: int = 8) -> list[TaskResult]:
    return [r for r in results if not r.exact][:limit]
