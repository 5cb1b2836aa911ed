"""Core benchmarks: cold import of lmstudio_agent against LiteLLM, and the agent loop's overhead per round.

Run with `make bench-core` (figures printed beside their targets; `make bench-core RECORD=1` writes
bench/results/core.json). Not a test: figures are recorded, not asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import platform
import statistics
import subprocess
import sys
import time
from datetime import datetime, UTC
from pathlib import Path

import httpx

from lmstudio_agent.agent.loop import Agent
from lmstudio_agent.model.client import ChatClient
from lmstudio_agent.agent.tools import ToolRegistry

sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import describe  # noqa: E402

RESULTS = Path(__file__).parent / "results" / "core.json"


def cold_import_ms(python: str, module: str, runs: int) -> float:
    """Median wall time of `import module` in a fresh interpreter (the interpreter's own start subtracted)."""
    def timed(code: str) -> float:
        samples = []
        for _ in range(runs):
            started = time.perf_counter()
            subprocess.run([python, "-c", code], check=True, capture_output=True)
            samples.append((time.perf_counter() - started) * 1000)
        return statistics.median(samples)

    return timed(f"import {module}") - timed("pass")


def loop_overhead(rounds: int) -> dict[str, float]:
    """Per-round time of the loop with the model replaced by an in-process transport (no network, no model):
    prompt building, the request, call extraction, argument validation, running the tool, memory."""
    registry = ToolRegistry()

    @registry.tool
    def add(a: int, b: int) -> int:
        """Add two numbers.

        Args:
            a: First number.
            b: Second number.
        """
        return a + b

    calls = itertools.count()

    def reply(request: httpx.Request) -> httpx.Response:
        # New arguments each round: an identical call would be answered from the run's own results, and the
        # run would end after two rounds.
        content = json.dumps({"name": "add", "arguments": {"a": next(calls), "b": 3}})
        return httpx.Response(200, content=json.dumps({"choices": [{"message": {
            "role": "assistant", "content": content}, "finish_reason": "stop"}]}).encode())

    transport = httpx.MockTransport(reply)
    agent = Agent(client=ChatClient("http://bench/v1", model="m", transport=transport), tools=registry,
                  mode="constrained", max_rounds=rounds + 1)
    samples: list[float] = []

    async def run() -> None:
        last = time.perf_counter()

        def on_message(message) -> None:
            nonlocal last
            if message.type == "result" and message.tool == "add":
                now = time.perf_counter()
                samples.append((now - last) * 1000)
                last = now

        for _ in range(3):
            await agent.run("add 2 and 3", on_message=on_message)
        samples.clear()
        last = time.perf_counter()
        await agent.run("add 2 and 3", on_message=on_message)

    asyncio.run(run())
    samples.sort()
    return {"rounds": len(samples), "p50_ms": round(statistics.median(samples), 3),
            "p99_ms": round(samples[int(len(samples) * 0.99) - 1], 3)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--litellm-python", help="an interpreter with litellm installed, to compare imports")
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--rounds", type=int, default=500)
    parser.add_argument("--out", type=Path, default=RESULTS, help="Where to write the JSON figures.")
    args = parser.parse_args()
    figures: dict = {"machine": describe(), "python": platform.python_version(),
                     "recorded_at": datetime.now(UTC).isoformat(timespec="seconds")}
    figures["import_lmstudio_agent_ms"] = round(cold_import_ms(sys.executable, "lmstudio_agent", args.runs), 1)
    if args.litellm_python:
        figures["import_litellm_ms"] = round(cold_import_ms(args.litellm_python, "litellm", args.runs), 1)
        figures["import_ratio"] = round(figures["import_lmstudio_agent_ms"] / figures["import_litellm_ms"], 3)
    figures["loop_overhead_per_round"] = loop_overhead(args.rounds)
    figures["targets"] = {"import_ms": 200, "import_ratio_max": 0.05, "loop_p50_ms": 1.0}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(figures, indent=2) + "\n")
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
