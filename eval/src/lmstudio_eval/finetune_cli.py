"""``lmstudio-agent finetune-tools``: fine-tune a model on calls to your own tools, then measure it.

1. Training rows from the suite's training split: the agent's exact first-round chat, answered with the right
   call (:mod:`.training`), plus the base model's own answers to a few general questions (so plain chat
   survives the training).
2. The base model (the embedded model unless ``--base-gguf``) is measured on the held-out split.
3. The ``finetune/`` pipeline runs in the fine-tuning environment (:mod:`.finetune_job`): LoRA, merge, GGUF,
   quantize.
4. The fine-tuned GGUF is served and measured on the same held-out tasks; a few general questions are asked
   of both models. Report, plots (accuracy, training curve) and the final JSON line go to ``--report-dir``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Iterator, Optional

import typer
from rich.console import Console

from lmstudio_agent.client import ChatClient
from lmstudio_agent.errors import AgentError, ErrorCode
from .report import PLOT_FILE, build_report, final_line, render_table, write_report
from .runner import TaskResult, run_suite, spread
from .suite import builtin_suite_path, load_suite
from .training import CHAT_CHECKS, CHAT_KEEP, ask_plainly, chat_rows, tool_call_rows, write_rows

console = Console(stderr=True)
CURVE_FILE = "training_curve.png"
DEFAULT_FT_PYTHON = Path(".venv/finetune/bin/python")


def finetune_python(explicit: Optional[Path]) -> Path:
    """The Python of the fine-tuning environment: --finetune-python, $LMSTUDIO_FINETUNE_PYTHON, the project's
    .venv/finetune, or this interpreter (when it has the stack itself)."""
    for candidate in (explicit, os.environ.get("LMSTUDIO_FINETUNE_PYTHON"), DEFAULT_FT_PYTHON):
        if candidate and Path(candidate).exists():
            return Path(candidate)
    return Path(sys.executable)


def run_training_job(python: Path, job: dict[str, Any], job_path: Path, timeout_s: float | None) -> dict[str, Any]:
    """Run :mod:`.finetune_job` in the fine-tuning environment; its output streams to this terminal."""
    job_path.parent.mkdir(parents=True, exist_ok=True)
    job_path.write_text(json.dumps(job, indent=2), encoding="utf-8")
    result_path = Path(job["result"])
    result_path.unlink(missing_ok=True)
    env = {**os.environ, "AXOLOTL_DO_NOT_TRACK": "1", "WANDB_MODE": "disabled",
           "PATH": f"{python.parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    try:
        # By file path: the fine-tuning environment has the core and the fine-tuner, not this package.
        subprocess.run([str(python), str(Path(__file__).with_name("finetune_job.py")), str(job_path)], env=env,
                       timeout=timeout_s, check=False)
    except subprocess.TimeoutExpired:
        raise AgentError(ErrorCode.FINE_TUNING_FAILED, f"fine-tuning took longer than {timeout_s:g} s") from None
    except OSError as exc:
        raise AgentError(ErrorCode.FINE_TUNING_FAILED, f"cannot run {python}: {exc.strerror}") from None
    if not result_path.is_file():
        raise AgentError(ErrorCode.FINE_TUNING_FAILED,
                         f"the fine-tuning job wrote no result (is the fine-tuning stack installed for {python}? "
                         "`make finetune-deps`)")
    result = json.loads(result_path.read_text(encoding="utf-8"))
    if not result.get("ok"):
        code = ErrorCode.GGUF_CONVERSION_FAILED if result.get("stage") == "conversion" else ErrorCode.FINE_TUNING_FAILED
        raise AgentError(code, f"{result.get('stage')}: {result.get('error')} (log: {result.get('log')})")
    return result


async def measure(base_url: str, api_key: str | None, model: str, tasks, mode: str, label: str,
                  chat_questions=(), keep_questions=()) -> tuple[list[TaskResult], dict[str, str], dict[str, str]]:
    """The held-out tasks in ``mode`` on one served model, and its plain answers to the given questions."""
    async with ChatClient(base_url, api_key, model, timeout=120) as client:
        with console.status(f"{label}: {len(tasks)} held-out tasks ...") as status:
            done: list[TaskResult] = []

            def tick(result: TaskResult) -> None:
                done.append(result)
                status.update(f"{label}: {len(done)}/{len(tasks)} tasks, exact {sum(r.exact for r in done) / len(done):.0%}")

            results = await run_suite(client, tasks, mode, on_result=tick)
        checks = await ask_plainly(client, chat_questions)
        keep = await ask_plainly(client, keep_questions)
    return results, checks, keep


@contextlib.contextmanager
def served(run_in_background, label: str, gguf: Path | None, alias: str | None = None) -> Iterator[Any]:
    """A gateway-model server on ``gguf`` (the embedded model when None) for the length of the block."""
    options: dict[str, Any] = {"model_path": gguf} if gguf else {}
    if alias:
        options["model_alias"] = alias
    stack = contextlib.ExitStack()
    with console.status(f"Starting the {label} ..."):
        running = stack.enter_context(run_in_background(**options))
    with stack:
        yield running


def plot_curve(losses: list[dict[str, float]], path: Path, title: str) -> Path | None:
    if not losses:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axis = plt.subplots(figsize=(7, 4))
    axis.plot([p["step"] for p in losses], [p["loss"] for p in losses], marker="." if len(losses) < 60 else None)
    axis.set_xlabel("optimizer step")
    axis.set_ylabel("training loss")
    axis.set_yscale("log")
    axis.set_title(title)
    axis.grid(alpha=0.3)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def finetune_tools_command(
    train_suite: Optional[Path] = typer.Option(None, "--train-suite", exists=True, dir_okay=False,
                                               help="Tasks to train on [default: the project's training split]"),
    heldout_suite: Optional[Path] = typer.Option(None, "--heldout-suite", exists=True, dir_okay=False,
                                                 help="Tasks to measure on [default: the project's held-out split]"),
    base_model: str = typer.Option("smollm2", help="What to train (see lmstudio-finetune): smollm2, a .gguf, an HF id."),
    base_gguf: Optional[Path] = typer.Option(None, "--base-gguf", exists=True, dir_okay=False,
                                             help="GGUF of the base model to compare with [default: the embedded model]"),
    output_dir: Path = typer.Option(Path("fine-tuned-models/tools"), help="Adapter, logs and GGUF files."),
    report_dir: Path = typer.Option(Path("reports/eval/finetune"), help="Report, plots and the training rows."),
    name: str = typer.Option("smollm2-tools", help="Name of the GGUF files."),
    device: str = typer.Option("auto", help="auto, cpu or cuda."),
    max_steps: Optional[int] = typer.Option(None, min=1, help="Stop after this many optimizer steps."),
    epochs: int = typer.Option(1, min=1),
    learning_rate: float = typer.Option(1e-3),
    batch_size: int = typer.Option(4, min=1),
    grad_accum: int = typer.Option(1, min=1),
    lora_r: int = typer.Option(16, min=1),
    train_rows: Optional[int] = typer.Option(None, "--train-rows", min=1, help="Use only N training tasks."),
    eval_tasks: Optional[int] = typer.Option(None, "--eval-tasks", min=1, help="Measure only N held-out tasks."),
    chat_keep: int = typer.Option(len(CHAT_KEEP), min=0, max=len(CHAT_KEEP),
                                  help="General questions answered by the base model and trained on."),
    mode: str = typer.Option("constrained", help="The mode the rows are written for and measured in."),
    finetune_python_path: Optional[Path] = typer.Option(None, "--finetune-python",
                                                        help="Python of the fine-tuning environment."),
    timeout: Optional[float] = typer.Option(None, help="Seconds allowed for training + conversion."),
) -> None:
    """Fine-tune a small model on calls to the suite's tools and measure it against the base model."""
    if mode not in ("constrained", "plain"):
        raise typer.BadParameter("rows are written in the constrained call format: constrained or plain",
                                 param_hint="--mode")
    try:
        from lmstudio_gateway.process import run_in_background
    except ModuleNotFoundError:
        console.print("[bold red]MODEL_NOT_LOADED[/]: finetune-tools serves the models with gateway-model (`make gateway`)")
        raise typer.Exit(2) from None
    try:
        train = spread(load_suite(train_suite or builtin_suite_path("train")), train_rows)
        heldout = spread(load_suite(heldout_suite or builtin_suite_path("heldout")), eval_tasks)
        overlap = {t.instruction for t in train} & {t.instruction for t in heldout}
        if overlap:
            raise AgentError(ErrorCode.INVALID_INSTRUCTION,
                             f"{len(overlap)} held-out instructions are also in the training tasks")
        report_dir.mkdir(parents=True, exist_ok=True)

        with served(run_in_background, "base model", base_gguf) as base:
            base_results, chat_before, keep = asyncio.run(measure(
                base.base_url, base.api_key, base.model, heldout, mode, "base model",
                CHAT_CHECKS, CHAT_KEEP[:chat_keep]))

        rows = tool_call_rows(train) + chat_rows(keep)
        rows_path = write_rows(rows, report_dir / "training_rows.jsonl")
        console.print(f"{len(rows)} training rows ({len(train)} tool calls, {len(rows) - len(train)} plain chat) "
                      f"-> {rows_path}")
        job = {"rows": str(rows_path.resolve()), "output_dir": str(output_dir.resolve()), "name": name,
               "base_model": base_model, "device": device, "max_steps": max_steps, "num_epochs": epochs,
               "learning_rate": learning_rate, "batch_size": batch_size, "gradient_accumulation_steps": grad_accum,
               "lora_r": lora_r, "result": str((output_dir / "finetune_result.json").resolve())}
        trained = run_training_job(finetune_python(finetune_python_path), job, output_dir / "finetune_job.json", timeout)

        with served(run_in_background, "fine-tuned model", Path(trained["gguf"]), name) as tuned:
            tuned_results, chat_after, _ = asyncio.run(measure(
                tuned.base_url, tuned.api_key, tuned.model, heldout, mode, "fine-tuned model", CHAT_CHECKS))
    except AgentError as exc:
        console.print(f"[bold red]{exc.code.value}[/]: {exc.message}")
        raise typer.Exit(2) from None

    report = build_report(
        {f"{mode} (base)": base_results, f"{mode} (fine-tuned)": tuned_results},
        suite=str(heldout_suite or builtin_suite_path("heldout")), model=f"{base_model} -> {name}", base_url="(embedded)",
        extra={"training": {k: trained[k] for k in ("rows", "device", "settings", "seconds", "train_loss", "files")},
               "training_losses": trained["losses"],
               "chat": [{"question": q, "before": chat_before.get(q, ""), "after": chat_after.get(q, "")}
                        for q in CHAT_CHECKS]},
    )
    write_report(report, report_dir)
    from .plot import plot_report

    plot_report(report, report_dir / PLOT_FILE)
    plot_curve(trained["losses"], report_dir / CURVE_FILE,
               f"LoRA on {len(train)} tool calls + {len(rows) - len(train)} chat rows ({trained['device']})")
    Console(width=max(Console().width, 110)).print(render_table(report))
    for item in report["chat"]:
        console.print(f"[bold]{item['question']}[/]\n  before: {item['before'][:160]}\n  after:  {item['after'][:160]}")
    console.print(f"report: {report_dir / 'report.json'}")
    print(final_line(report), flush=True)
