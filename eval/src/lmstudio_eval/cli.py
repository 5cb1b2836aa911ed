"""``lmstudio-agent eval`` (and ``python -m lmstudio_eval``): measure tool calling on a suite.

``register(app)`` mounts the commands into the main CLI; :data:`eval_app` is the same commands standalone.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from pathlib import Path
from typing import Any, Optional
from collections.abc import Iterator

import typer
from rich.console import Console

from lmstudio_agent.model.client import ChatClient
from lmstudio_agent.model.connection import API_KEY_HELP, BASE_URL_HELP, CONNECT_HINT, MODEL_HELP, resolve
from lmstudio_agent.model.policy import SmallModelPolicy
from lmstudio_agent.deadline import Deadline
from lmstudio_agent.errors import AgentError, ErrorCode
from .finetuning import cli as finetune_cli
from .report import PLOT_FILE, build_report, final_line, render_table, write_report
from .runner import MODE_CHOICES, TaskResult, concrete_mode, resolve_modes, run_suite, spread
from .suite import builtin_suite_path, load_suite
from .finetuning.data import CHAT_CHECKS, ask_plainly

console = Console(stderr=True)
DEFAULT_REPORT_DIR = Path("reports/eval/latest")
MODE_HELP = f"Mode to measure (repeat for several): {'|'.join(MODE_CHOICES)}."


@contextlib.contextmanager
def model_server(base_url: str | None, api_key: str | None, model: str | None, embedded: bool,
                 gguf: Path | None, bare: bool = False) -> Iterator[tuple[str, str | None, str]]:
    """(base_url, api_key, model): the given (or running) server, or the embedded model started for the run (with
    the shipped tool adapter unless ``bare``)."""
    if not embedded:
        connection = resolve(base_url, api_key, model)
        yield connection.base_url, connection.api_key, connection.model
        return
    if model:
        raise typer.BadParameter("--embedded serves its own model (use --gguf to choose the file)", param_hint="--model")
    try:
        from lmstudio_gateway.process import run_in_background
    except ModuleNotFoundError:
        raise AgentError(ErrorCode.MODEL_NOT_LOADED,
                         "--embedded needs the gateway-model package (`make gateway`)") from None
    stack = contextlib.ExitStack()
    with console.status("Starting the embedded model server ...", spinner="dots"):
        options: dict[str, Any] = {"model_path": gguf} if gguf else {}
        running = stack.enter_context(run_in_background(**options, bare=bare))
    with stack:
        yield running.base_url, running.api_key, running.model


SPLIT_CHOICES = ("heldout", "unseen", "train", "corpus-train")


def split_path(split: str) -> Path:
    """The package's file of a split: the suite's held-out/train splits, the corpus's unseen-tool/train splits."""
    from .corpus import corpus_path

    if split not in SPLIT_CHOICES:
        raise typer.BadParameter(f"unknown split '{split}': choose from {', '.join(SPLIT_CHOICES)}", param_hint="--split")
    if split == "unseen":
        return corpus_path("unseen")
    if split == "corpus-train":
        return corpus_path("train")
    return builtin_suite_path(split)  # type: ignore[arg-type]


SPLIT_HELP = f"Project split to measure (repeat): {'|'.join(SPLIT_CHOICES)}."


def eval_command(
    suite: Optional[Path] = typer.Option(None, "--suite", exists=True, dir_okay=False,
                                         help="Suite JSONL file [default: the --split files]"),
    split: list[str] = typer.Option(["heldout", "unseen"], "--split", "-s", help=SPLIT_HELP),
    base_url: Optional[str] = typer.Option(None, "--base-url", show_default=False, help=BASE_URL_HELP),
    api_key: Optional[str] = typer.Option(None, "--api-key", show_default=False, help=API_KEY_HELP),
    model: Optional[str] = typer.Option(None, "--model", show_default=False, help=MODEL_HELP),
    mode: list[str] = typer.Option(["auto"], "--mode", "-m",
                                   help=MODE_HELP),
    embedded: bool = typer.Option(False, "--embedded", help="Start the embedded model (gateway-model) for the run."),
    bare: bool = typer.Option(False, "--bare", help="With --embedded: serve the model without the shipped adapter."),
    bare_mode: list[str] = typer.Option([], "--bare-mode",
                                        help="With --embedded: also measure these modes on the bare model (repeat)."),
    gguf: Optional[Path] = typer.Option(None, "--gguf", exists=True, dir_okay=False,
                                        help="With --embedded: serve this GGUF instead of SmolLM2-135M."),
    limit: Optional[int] = typer.Option(None, "--limit", min=1, help="Run only N tasks per split, spread over it."),
    bare_limit: Optional[int] = typer.Option(None, "--bare-limit", min=1,
                                             help="Tasks per split for the --bare-mode runs [default: --limit]."),
    report_dir: Path = typer.Option(DEFAULT_REPORT_DIR, "--report-dir", help="Where report.json and the plot go."),
    label: Optional[str] = typer.Option(None, "--label", help="Name the modes in the report, e.g. 'fine-tuned'."),
    max_tokens: int = typer.Option(512, "--max-tokens", min=16, help="Token cap per reply (the agent's default)."),
    timeout: float = typer.Option(120.0, "--timeout", min=1.0, help="Seconds allowed per model request."),
    chat: bool = typer.Option(True, "--chat/--no-chat", help="Also ask each served model five general questions "
                                                             "(plain chat, no tools) and report the answers."),
    answer_first_round: Optional[str] = typer.Option(
        None, "--answer-first-round", help="Constrained mode: when a first round may answer in words instead of "
                                           "calling (always | unrelated) [default: the small-model policy's]"),
    policy: str = typer.Option("on", "--policy", help="Constrained mode: the small-model policy's rules on, or off "
                                                      "(a capable model that needs no steering)."),
) -> None:
    """Measure tool calling per mode and split: tool-name and exact name+arguments accuracy, restraint (no call when
    no tool fits), two-step success and latency per call."""
    try:
        modes = resolve_modes(mode)
        extra_modes = resolve_modes(bare_mode) if bare_mode else []
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--mode") from None
    if extra_modes and not embedded:
        raise typer.BadParameter("--bare-mode needs --embedded", param_hint="--bare-mode")
    if policy not in ("on", "off"):
        raise typer.BadParameter("choose on or off", param_hint="--policy")
    rules = SmallModelPolicy() if policy == "on" else SmallModelPolicy.off()
    if answer_first_round is not None:
        if answer_first_round not in ("always", "unrelated"):
            raise typer.BadParameter("choose always or unrelated", param_hint="--answer-first-round")
        rules = rules.but(answer_first_round=answer_first_round)
    suites = {"suite": suite} if suite else {name: split_path(name) for name in dict.fromkeys(split)}
    try:
        loaded = {name: load_suite(path) for name, path in suites.items()}
        runs = [(bare, modes, {name: spread(tasks, limit) for name, tasks in loaded.items()})]
        if extra_modes:
            runs.append((True, extra_modes, {name: spread(tasks, bare_limit or limit) for name, tasks in loaded.items()}))
        results: dict[str, list[TaskResult]] = {}
        answers: dict[str, dict[str, str]] = {}
        model_id = ""
        for run_bare, run_modes, task_sets in runs:
            setup = "bare" if run_bare and embedded else label
            with model_server(base_url, api_key, model, embedded, gguf, run_bare) as (url, key, served):
                model_id = served
                results.update(asyncio.run(_evaluate(url, key, model_id, task_sets, run_modes, setup, max_tokens,
                                                     timeout, multiple=len(task_sets) > 1, policy=rules)))
                if chat:
                    who = "bare model" if run_bare and embedded else (
                        "with the shipped adapter" if embedded else (label or model_id))
                    answers[who] = asyncio.run(_chat(url, key, model_id, timeout))
    except AgentError as exc:
        console.print(f"[bold red]{exc.code.value}[/]: {exc.message}")
        if exc.code is ErrorCode.CONNECTION_FAILED and not embedded:
            console.print(CONNECT_HINT + " --embedded starts the embedded model for the run.")
        raise typer.Exit(2) from None
    report = build_report(results, suite=", ".join(str(p) for p in suites.values()), model=model_id,
                          base_url=base_url or "(embedded)",
                          extra={"max_tokens": max_tokens, "label": label, "splits": list(suites),
                                 "adapter": None if (bare or not embedded) else "shipped tool adapter",
                                 "answer_first_round": rules.answer_first_round, "policy": policy,
                                 "chat": [{"question": q, **{who: a.get(q, "") for who, a in answers.items()}}
                                          for q in CHAT_CHECKS] if answers else []})
    write_report(report, report_dir)
    try:
        from .plot import plot_report
    except ModuleNotFoundError:  # matplotlib is in the eval extra
        console.print("[yellow]matplotlib is not installed: no plot (pip install 'lmstudio-agent[eval]')")
    else:
        plot_report(report, report_dir / PLOT_FILE)
    Console(width=max(Console().width, 110)).print(render_table(report))
    console.print(f"report: {report_dir / 'report.json'}")
    print(final_line(report), flush=True)


async def _evaluate(base_url: str, api_key: str | None, model: str, task_sets: dict[str, list], modes: list[str],
                    label: str | None, max_tokens: int, timeout: float, multiple: bool,
                    policy: SmallModelPolicy | None = None) -> dict[str, list[TaskResult]]:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from lmstudio_agent.lmstudio import ensure_model

    results: dict[str, list[TaskResult]] = {}
    async with ChatClient(base_url, api_key, model, timeout=timeout) as client:
        # As `run` does: a model the server does not have is an error, not a 0 % score.
        with console.status(f"Checking {model} on {base_url} ...", spinner="dots"):
            await ensure_model(client, model, Deadline(timeout))
        with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[acc]}"),
                      TimeElapsedColumn(), console=console, transient=False) as progress:
            for requested in modes:
                mode = await concrete_mode(client, requested)
                base_name = f"{mode} ({label})" if label else (mode if requested != "auto" else f"{mode} (auto)")
                for split_name, tasks in task_sets.items():
                    name = f"{base_name} · {split_name}" if multiple else base_name
                    bar = progress.add_task(name, total=len(tasks), acc="")
                    done: list[TaskResult] = []

                    def tick(result: TaskResult, bar=bar, done=done) -> None:
                        done.append(result)
                        calls = [r for r in done if r.kind != "no_call"]
                        exact = sum(r.exact for r in calls) / len(calls) if calls else 0.0
                        progress.update(bar, advance=1, acc=f"exact {exact:.0%}")

                    results[name] = await run_suite(client, tasks, mode, max_tokens=max_tokens, request_timeout=timeout,
                                                    on_result=tick, policy=policy)
    return results


async def _chat(base_url: str, api_key: str | None, model: str, timeout: float) -> dict[str, str]:
    async with ChatClient(base_url, api_key, model, timeout=timeout) as client:
        return await ask_plainly(client, CHAT_CHECKS)


def register(app: typer.Typer) -> None:
    """Mount ``eval``, ``outcomes`` and ``finetune-tools`` into a typer app (the main ``lmstudio-agent`` CLI)."""
    from .outcomes.cli import outcomes_command  # imports this module's model_server

    app.command("eval")(eval_command)
    app.command("outcomes")(outcomes_command)
    app.command("finetune-tools")(finetune_cli.finetune_tools_command)


eval_app = typer.Typer(help="Tool-calling evaluation and fine-tuning on your own tools.", no_args_is_help=True,
                       add_completion=False)
register(eval_app)


def main() -> None:
    os.environ.setdefault("PYTHONIOENCODING", "utf-8")
    eval_app()
