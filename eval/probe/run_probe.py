"""Run the grammar probe (``grammar_probe.jsonl``) through the agent's first round in constrained mode.

Positive tasks are scored as the eval harness scores them (``score_call``: exact name and arguments);
a negative task (``expected`` null) is right when the reply calls nothing. Prints one JSON summary line.

    python eval/probe/run_probe.py --label after [--base-url URL --api-key KEY] [--set FREE_NUMBERS=1]

Without ``--base-url`` it starts the embedded model (gateway-model) for the run. ``--set NAME=1`` flips a
measured switch of ``lmstudio_agent.constrained`` for the run.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import time
from pathlib import Path

from lmstudio_agent import constrained
from lmstudio_agent.agent import Agent
from lmstudio_agent.client import ChatClient
from lmstudio_agent.deadline import Deadline
from lmstudio_agent.lmstudio import DEFAULT_GOALS
from lmstudio_agent.tools import Tool

try:
    from lmstudio_eval.scoring import score_call, to_plain
except ModuleNotFoundError:  # before the harness moved out of the core
    from lmstudio_agent.eval.scoring import score_call, to_plain

HERE = Path(__file__).parent


def _not_run(**_: object) -> None:
    raise RuntimeError("probe tools are never run")


def tools_of(task: dict) -> list[Tool]:
    return [Tool(name=t["function"]["name"], description=t["function"].get("description", ""),
                 parameters=t["function"]["parameters"], function=_not_run) for t in task["tools"]]


async def run(base_url: str, api_key: str | None, model: str, tasks: list[dict]) -> list[dict]:
    client = ChatClient(base_url, api_key=api_key, model=model)
    results = []
    for task in tasks:
        tools = tools_of(task)
        agent = Agent(client=client, tools=tools, goals=DEFAULT_GOALS, mode="constrained", max_tokens=256)
        started = time.perf_counter()
        outcome = await agent.first_turn(task["instruction"], deadline=Deadline(180))
        latency = time.perf_counter() - started
        expected = task["expected"]
        checked = outcome.checked[0] if outcome.checked else None
        called = checked.call.name if checked else None
        arguments = to_plain(checked.call.arguments) if checked else None
        if expected is None:  # the built-in final-answer tool (before the answer branch) also calls nothing
            held = called in (None, "terminate")
            ok, name_ok, reason = held, held, "" if held else f"called {called}"
        elif checked is None:
            ok, name_ok, reason = False, False, "no call"
        else:
            tool = next(t for t in tools if t.name == expected["name"])
            valid = to_plain(checked.arguments) if checked.error is None else None
            score = score_call(expected["name"], expected["arguments"], called, valid, tool.parameters, checked.error)
            ok, name_ok, reason = score.exact, score.name_ok, score.reason
        response = outcome.turn.response
        results.append({"id": task["id"], "negative": expected is None, "ok": ok, "name_ok": name_ok,
                        "called": called, "arguments": arguments, "reason": reason,
                        "content": (response.content if response else "")[:300], "latency_s": round(latency, 3)})
        print(("OK  " if ok else "BAD ") + task["id"], called, json.dumps(arguments, ensure_ascii=False)[:160],
              reason[:80], flush=True)
    return results


def summary(results: list[dict], label: str) -> dict:
    positive = [r for r in results if not r["negative"]]
    negative = [r for r in results if r["negative"]]
    share = lambda rows, key: round(100 * sum(r[key] for r in rows) / len(rows), 1) if rows else None
    return {"label": label, "positive": len(positive), "exact_pct": share(positive, "ok"),
            "name_pct": share(positive, "name_ok"), "negative": len(negative), "restraint_pct": share(negative, "ok"),
            "mean_latency_s": round(sum(r["latency_s"] for r in results) / len(results), 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--label", default="run")
    parser.add_argument("--base-url")
    parser.add_argument("--api-key")
    parser.add_argument("--model", default="smollm2-135m-instruct")
    parser.add_argument("--suite", default=str(HERE / "grammar_probe.jsonl"))
    parser.add_argument("--only", help="comma-separated task ids")
    parser.add_argument("--set", action="append", default=[], help="NAME=VALUE of a constrained switch")
    parser.add_argument("--report", help="write every task's result here (JSON)")
    args = parser.parse_args()
    for item in args.set:
        name, _, value = item.partition("=")
        setattr(constrained, name, json.loads(value))
    tasks = [json.loads(line) for line in Path(args.suite).read_text().splitlines() if line.strip()]
    if args.only:
        keep = set(args.only.split(","))
        tasks = [t for t in tasks if t["id"] in keep]
    with contextlib.ExitStack() as stack:
        base_url, api_key, model = args.base_url, args.api_key, args.model
        if not base_url:
            from lmstudio_gateway.process import run_in_background
            server = stack.enter_context(run_in_background())
            base_url, api_key, model = server.base_url, server.api_key, server.model
        results = asyncio.run(run(base_url, api_key, model, tasks))
    line = summary(results, args.label)
    if args.report:
        Path(args.report).parent.mkdir(parents=True, exist_ok=True)
        Path(args.report).write_text(json.dumps({"summary": line, "results": results}, indent=1, ensure_ascii=False))
    print(json.dumps(line))


if __name__ == "__main__":
    main()
