"""Measuring tool calling: the suite, the harness that runs it through the agent's first round, scoring,
reports and plots, and generating fine-tuning data from a tool registry."""

from .report import build_report, final_line, summarize
from .runner import EVAL_MODES, PlainStrategy, TaskResult, run_suite, run_task
from .scoring import Score, compare_arguments, score_call, values_equal
from .suite import Task, builtin_suite_path, generate_tasks, load_suite, tools_for
from .suite_tools import suite_registry

__all__ = [
    "EVAL_MODES", "PlainStrategy", "Score", "Task", "TaskResult", "build_report", "builtin_suite_path",
    "compare_arguments", "final_line", "generate_tasks", "load_suite", "run_suite", "run_task", "score_call",
    "suite_registry", "summarize", "tools_for", "values_equal",
]
