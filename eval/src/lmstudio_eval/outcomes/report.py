"""The outcome evaluation's figures: the mean per metric over every run, and per task its worst wording.

Metrics (each a share of runs, where the runs it counts exist; None where there are none):

- ``outcome_success``: every run: the state is right and the answer states the result (restraint: nothing changed
  and the run answered in words);
- ``exact_first_call``: single, answer and goal tasks: the first tool call, name and arguments, is the gold one;
- ``restraint``: restraint tasks' success;
- ``goal_tasks``: goal tasks' success (both chained steps, in order, the state right, the result stated);
- ``invoice_agent``: the notebook's invoice agent: stored once, right number and total, the number stated;
- ``answers_state_result``: runs of tasks with a result to state whose final answer states it (in words, no echo);
- ``seconds_per_call``: the mean latency of a model call, over every model call of every run.

Per task, the worst wording: ``worst_wording_exact`` is the share of tasks with a first call to compare whose
every wording got the exact first call; ``worst_wording_success`` the share of tasks whose every wording succeeded.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from typing import Any
from collections.abc import Iterable, Mapping, Sequence

from .runner import WordingResult

METRICS = ("outcome_success", "exact_first_call", "restraint", "goal_tasks", "invoice_agent", "answers_state_result",
           "worst_wording_exact", "worst_wording_success", "seconds_per_call")
REPORT_FILE = "report.json"


def _share(values: Iterable[bool]) -> float | None:
    items = list(values)
    return round(sum(items) / len(items), 4) if items else None


def figures(results: Sequence[WordingResult]) -> dict[str, Any]:
    """The metrics of a set of runs (see the module docstring)."""
    by_task: dict[str, list[WordingResult]] = defaultdict(list)
    for result in results:
        by_task[result.task_id].append(result)
    latencies = [s for r in results for s in r.call_latencies]
    exact_tasks = [rs for rs in by_task.values() if rs[0].verdict.first_call_exact is not None]
    return {
        "runs": len(results),
        "tasks": len(by_task),
        "model_calls": len(latencies),
        "outcome_success": _share(r.verdict.success for r in results),
        "exact_first_call": _share(bool(r.verdict.first_call_exact) for r in results
                                   if r.verdict.first_call_exact is not None),
        "restraint": _share(r.verdict.success for r in results if r.kind == "restraint"),
        "goal_tasks": _share(r.verdict.success for r in results if r.kind == "goal"),
        "invoice_agent": _share(r.verdict.success for r in results if r.kind == "invoice"),
        "answers_state_result": _share(r.verdict.answer_ok for r in results if r.kind != "restraint"),
        "worst_wording_exact": _share(all(r.verdict.first_call_exact for r in rs) for rs in exact_tasks),
        "worst_wording_success": _share(all(r.verdict.success for r in rs) for rs in by_task.values()),
        "seconds_per_call": round(sum(latencies) / len(latencies), 3) if latencies else None,
    }


def per_task(results: Sequence[WordingResult]) -> list[dict[str, Any]]:
    """Each task: its kind, how many wordings succeeded, and its worst wording (the first that failed)."""
    by_task: dict[str, list[WordingResult]] = defaultdict(list)
    for result in results:
        by_task[result.task_id].append(result)
    rows = []
    for task_id, runs in by_task.items():
        failed = [r for r in runs if not r.verdict.success]
        worst = failed[0] if failed else runs[0]
        rows.append({"task_id": task_id, "kind": runs[0].kind, "family": runs[0].family,
                     "wordings": len(runs), "succeeded": len(runs) - len(failed),
                     "exact": sum(bool(r.verdict.first_call_exact) for r in runs),
                     "worst_wording": {"style": worst.style, "success": worst.verdict.success,
                                       "reason": worst.verdict.reason}})
    return rows


def build_report(results_by_split: Mapping[str, Sequence[WordingResult]], *, extra: Mapping[str, Any]) -> dict[str, Any]:
    """The report: per split its figures, figures per kind and per wording style, per-task rows and every run."""
    splits = {}
    for split, results in results_by_split.items():
        kinds = sorted({r.kind for r in results})
        styles = list(dict.fromkeys(r.style for r in results))
        splits[split] = {
            "figures": figures(results),
            "by_kind": {kind: figures([r for r in results if r.kind == kind]) for kind in kinds},
            "by_style": {style: figures([r for r in results if r.style == style]) for style in styles},
            "tasks": per_task(results),
            "runs": [r.to_dict() for r in results],
        }
    return {"evaluation": "outcomes", **dict(extra), "splits": splits}


def write_report(report: Mapping[str, Any], directory: Path) -> Path:
    """Write ``report.json`` into ``directory`` (created); its path."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / REPORT_FILE
    path.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return path


def summary_lines(report: Mapping[str, Any]) -> list[str]:
    """A printed summary: one block per split, one line per metric."""
    lines = []
    for split, data in report["splits"].items():
        shown = data["figures"]
        lines.append(f"outcomes · {split}: {shown['tasks']} tasks, {shown['runs']} runs, {shown['model_calls']} model calls")
        for metric in METRICS:
            value = shown.get(metric)
            text = "—" if value is None else (f"{value:.2f} s" if metric == "seconds_per_call" else f"{value:.1%}")
            lines.append(f"  {metric:<24} {text}")
    return lines


def final_line(report: Mapping[str, Any]) -> str:
    """The machine-readable last line: each split's figures."""
    return json.dumps({"evaluation": "outcomes", "model": report.get("model"), "policy": report.get("policy"),
                       **{split: data["figures"] for split, data in report["splits"].items()}})
