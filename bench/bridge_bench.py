"""AI Bridge benchmark: round trips through the hub to echo agents on loopback.

The hub runs in this process; the echo agents run in a second process and connect to it over real WebSocket
connections, as remote agents would. Each task is ``BridgeHub.submit`` -> ``task:execute`` frame -> the
agent's runner -> ``task:result`` frame -> the caller, timed end to end, at several numbers of tasks in
flight. The HTTP ``POST /execute`` round trip (client -> uvicorn -> hub -> agent -> back) is measured too.

Run with `make bench-bridge`; figures go to bench/results/bridge.json. Targets (from the issue): 2,000 tasks/s
or more and p99 under 10 ms. Not a test: figures are recorded, not asserted.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import describe  # noqa: E402

RESULTS = Path(__file__).parent / "results" / "bridge.json"
TOKEN = "bench-agent-token-0123456789"
API_KEY = "bench-client-key-0123456789"
MODEL = "echo"


async def echo(instruction: str, tools: list[str]):
    from lmstudio_agent.agent.messages import AgentMessage

    return [AgentMessage(type="result", content=instruction)]


async def run_agents(url: str, count: int, concurrency: int) -> None:
    """The agents process: ``count`` echo agents serving until killed."""
    from lmstudio_agent.bridge import serve_agent

    await asyncio.gather(
        *(
            serve_agent(echo, bridge_url=url, agent_id=f"echo-{i}", token=TOKEN, model=MODEL, tools=["echo"],
                        max_concurrency=concurrency)
            for i in range(count)
        )
    )


def percentile(sorted_ms: list[float], q: float) -> float:
    index = min(len(sorted_ms) - 1, max(0, round(q / 100 * len(sorted_ms)) - 1))
    return sorted_ms[index]


def summary(latencies_s: list[float], wall_s: float) -> dict[str, float]:
    ms = sorted(x * 1000 for x in latencies_s)
    return {
        "tasks": len(ms),
        "tasks_per_s": round(len(ms) / wall_s, 1),
        "p50_ms": round(percentile(ms, 50), 3),
        "p90_ms": round(percentile(ms, 90), 3),
        "p99_ms": round(percentile(ms, 99), 3),
        "max_ms": round(ms[-1], 3),
        "mean_ms": round(statistics.fmean(ms), 3),
    }


async def closed_loop(call, tasks: int, in_flight: int) -> dict[str, float]:
    """``in_flight`` callers, each issuing its next task when the last one returns, until ``tasks`` are done."""
    latencies: list[float] = []
    remaining = tasks

    async def caller() -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            started = time.perf_counter()
            await call(remaining)
            latencies.append(time.perf_counter() - started)

    gc.collect()
    started = time.perf_counter()
    await asyncio.gather(*(caller() for _ in range(in_flight)))
    return summary(latencies, time.perf_counter() - started)


async def bench(args: argparse.Namespace) -> dict:
    import httpx
    import websockets

    from lmstudio_hub import BridgeHub
    from lmstudio_hub.http import HubHttpApp, HubHttpServer

    hub = BridgeHub(TOKEN, max_queue=10_000, max_agent_concurrency=256)
    await hub.start("127.0.0.1", 0)
    agents = subprocess.Popen(
        [sys.executable, __file__, "--agents-only", hub.url, "--agents", str(args.agents),
         "--agent-concurrency", str(args.agent_concurrency)]
    )
    server = HubHttpServer(HubHttpApp(hub, api_key=API_KEY))
    await server.start("127.0.0.1", 0)
    try:
        deadline = time.monotonic() + 30
        while len(hub.agents()) < args.agents:
            if time.monotonic() > deadline or agents.poll() is not None:
                raise RuntimeError("the echo agents did not register")
            await asyncio.sleep(0.05)

        async def submit(i: int) -> None:
            result = await hub.submit(f"task {i}", ["echo"], MODEL)
            assert result[0].content == f"task {i}"

        await closed_loop(submit, args.warmup, 8)
        hub_runs = {str(n): await closed_loop(submit, args.tasks, n) for n in args.in_flight}

        async with httpx.AsyncClient(base_url=server.url, headers={"Authorization": f"Bearer {API_KEY}"},
                                     limits=httpx.Limits(max_connections=64), timeout=30) as client:
            async def post(i: int) -> None:
                response = await client.post("/execute", json={"instruction": f"task {i}", "tools": ["echo"]})
                assert response.status_code == 200, response.text

            await closed_loop(post, args.warmup // 2, 8)
            http_runs = {str(n): await closed_loop(post, args.http_tasks, n) for n in (1, 8)}
        stats = hub.stats
    finally:
        agents.terminate()
        agents.wait(10)
        await server.stop()
        await hub.stop()

    headline = hub_runs[str(args.headline)]
    return {
        "benchmark": "bridge round trip: BridgeHub.submit -> WebSocket -> echo agent -> WebSocket -> caller",
        "target": {"tasks_per_s": ">= 2000", "p99_ms": "< 10"},
        "headline": {"in_flight": args.headline, **headline,
                     "meets_target": headline["tasks_per_s"] >= 2000 and headline["p99_ms"] < 10},
        "hub_submit_by_in_flight": hub_runs,
        "http_execute_by_in_flight": http_runs,
        "hub_stats": {"submitted": stats.submitted, "completed": stats.completed, "failed": stats.failed,
                      "requeued": stats.requeued},
        "setup": {
            "agents": args.agents, "agent_max_concurrency": args.agent_concurrency,
            "agents_process": "separate process, loopback WebSocket", "compression": "off",
            "tasks_per_run": args.tasks, "warmup_tasks": args.warmup,
        },
        "machine": {**describe(args.machine), "websockets": websockets.__version__},
        "recorded_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--agents-only", metavar="URL", help=argparse.SUPPRESS)
    parser.add_argument("--agents", type=int, default=2)
    parser.add_argument("--agent-concurrency", type=int, default=32)
    parser.add_argument("--tasks", type=int, default=10_000)
    parser.add_argument("--http-tasks", type=int, default=2_000)
    parser.add_argument("--warmup", type=int, default=1_000)
    parser.add_argument("--in-flight", type=int, nargs="+", default=[1, 4, 8, 16, 32])
    parser.add_argument("--headline", type=int, default=8, help="The in-flight level reported as the headline.")
    parser.add_argument("--machine", default="", help="A label for the machine the figures come from.")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    if args.agents_only:
        try:
            asyncio.run(run_agents(args.agents_only, args.agents, args.agent_concurrency))
        except KeyboardInterrupt:
            pass
        return
    if args.headline not in args.in_flight:
        parser.error("--headline must be one of --in-flight")
    result = asyncio.run(bench(args))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({"headline": result["headline"], "hub_submit_by_in_flight": result["hub_submit_by_in_flight"],
                      "http_execute_by_in_flight": result["http_execute_by_in_flight"]}, indent=2))


if __name__ == "__main__":
    main()
