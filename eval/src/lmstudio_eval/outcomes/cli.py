"""``lmstudio-agent outcomes`` (and ``python -m lmstudio_eval outcomes``): whole agent runs on the outcome splits."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any, Optional

import typer
from rich.console import Console

from lmstudio_agent.model.connection import API_KEY_HELP, BASE_URL_HELP, CONNECT_HINT, MODEL_HELP
from lmstudio_agent.deadline import Deadline
from lmstudio_agent.errors import AgentError, ErrorCode
from ..cli import model_server
from ..runner import spread
from .generator import GENERATOR_VERSION, SPLIT_SEEDS, STYLES, load_split
from .report import build_report, final_line, summary_lines, write_report
from .runner import DEFAULT_MAX_ROUNDS, TimedClient, WordingResult, policy_kwargs, run_tasks

console = Console(stderr=True)
DEFAULT_REPORT_DIR = Path("reports/eval/outcomes/latest")
SPLIT_HELP = f"Outcome split (repeat): {'|'.join(SPLIT_SEEDS)}."
STYLE_HELP = f"Only these wordings (repeat): {'|'.join(STYLES)}."


def outcomes_command(
    split: list[str] = typer.Option(["dev"], "--split", "-s", help=SPLIT_HELP),
    base_url: Optional[str] = typer.Option(None, "--base-url", show_default=False, help=BASE_URL_HELP),
    api_key: Optional[str] = typer.Option(None, "--api-key", show_default=False, help=API_KEY_HELP),
    model: Optional[str] = typer.Option(None, "--model", show_default=False, help=MODEL_HELP),
    mode: str = typer.Option("auto", "--mode", "-m", help="The agent's tool mode: auto|native|parsed|constrained."),
    embedded: bool = typer.Option(False, "--embedded", help="Start the embedded model (gateway-model) for the run."),
    bare: bool = typer.Option(False, "--bare", help="With --embedded: serve the model without the shipped adapter."),
    gguf: Optional[Path] = typer.Option(None, "--gguf", exists=True, dir_okay=False,
                                        help="With --embedded: serve this GGUF instead of SmolLM2-135M."),
    policy: str = typer.Option("on", "--policy", help="The small-model policy: on|off (off passes policy=None to "
                                                      "Agent where it takes one)."),
    limit: Optional[int] = typer.Option(None, "--limit", min=1, help="Run only N tasks per split, spread over it."),
    style: list[str] = typer.Option([], "--style", help=STYLE_HELP),
    max_rounds: int = typer.Option(DEFAULT_MAX_ROUNDS, "--max-rounds", min=1, help="Model calls one run may make."),
    max_tokens: int = typer.Option(512, "--max-tokens", min=16, help="Token cap per reply."),
    timeout: float = typer.Option(120.0, "--timeout", min=1.0, help="Seconds allowed per model request."),
    report_dir: Path = typer.Option(DEFAULT_REPORT_DIR, "--report-dir", help="Where report.json goes."),
) -> None:
    """Run every wording of the outcome tasks through the agent loop and judge what each run did: outcome success,
    exact first call, restraint, goal tasks, the notebook's invoice agent, answers that state the result, and seconds
    per model call; per task, the worst wording."""
    for name in split:
        if name not in SPLIT_SEEDS:
            raise typer.BadParameter(f"unknown split '{name}': choose from {', '.join(SPLIT_SEEDS)}", param_hint="--split")
    for name in style:
        if name not in STYLES:
            raise typer.BadParameter(f"unknown style '{name}': choose from {', '.join(STYLES)}", param_hint="--style")
    if mode not in ("auto", "native", "parsed", "constrained"):
        raise typer.BadParameter("choose auto, native, parsed or constrained", param_hint="--mode")
    try:
        agent_kwargs, applied = policy_kwargs(policy)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--policy") from None
    task_sets = {name: spread(load_split(name), limit) for name in dict.fromkeys(split)}
    try:
        with model_server(base_url, api_key, model, embedded, gguf, bare) as (url, key, served):
            results = asyncio.run(_evaluate(url, key, served, task_sets, mode, max_rounds, max_tokens, timeout,
                                            agent_kwargs, style))
    except AgentError as exc:
        console.print(f"[bold red]{exc.code.value}[/]: {exc.message}")
        if exc.code is ErrorCode.CONNECTION_FAILED and not embedded:
            console.print(CONNECT_HINT + " --embedded starts the embedded model for the run.")
        raise typer.Exit(2) from None
    adapter = None if (bare or not embedded or gguf) else "shipped tool adapter"
    report = build_report(results, extra={
        "model": served, "base_url": base_url or "(embedded)", "mode": mode, "policy": applied, "adapter": adapter,
        "generator_version": GENERATOR_VERSION, "seeds": {name: SPLIT_SEEDS[name] for name in task_sets},
        "limit": limit, "styles": style or list(STYLES), "max_rounds": max_rounds})
    path = write_report(report, report_dir)
    for line in summary_lines(report):
        console.print(line, highlight=False)
    console.print(f"report: {path}")
    print(final_line(report), flush=True)


async def _evaluate(base_url: str, api_key: str | None, model: str, task_sets: dict[str, list[Any]], mode: str,
                    max_rounds: int, max_tokens: int, timeout: float, agent_kwargs: dict[str, Any],
                    styles: list[str]) -> dict[str, list[WordingResult]]:
    from lmstudio_agent.lmstudio import ensure_model

    results: dict[str, list[WordingResult]] = {}
    client = TimedClient(base_url, api_key, model, timeout=timeout)
    async with client:
        await ensure_model(client, model, Deadline(timeout))  # a model the server lacks is an error, not 0 %
        for split, tasks in task_sets.items():
            runs = sum(len([w for w in t["wordings"] if not styles or w["style"] in styles]) for t in tasks)
            done: list[WordingResult] = []

            def tick(result: WordingResult, split: str = split, runs: int = runs, done: list = done) -> None:
                done.append(result)
                mark = "ok " if result.verdict.success else "-- "
                console.print(f"{split} {len(done)}/{runs} {mark}{result.task_id} {result.style:<10} "
                              f"{result.verdict.reason[:90]}", highlight=False)

            results[split] = await run_tasks(client, tasks, mode=mode, max_rounds=max_rounds, max_tokens=max_tokens,
                                             run_timeout=timeout * (max_rounds + 4), agent_kwargs=agent_kwargs,
                                             styles=styles or None, on_result=tick)
    return results
