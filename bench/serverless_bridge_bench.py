"""The bridge round trip on each hub, in one run: the process hub, the Worker's Durable Objects and the
Lambda's API Gateway WebSocket routes, each with one echo agent connected over a real loopback WebSocket.

Each round trip is one client ``POST /execute`` through the hub's own entry point, in process (the process
hub's ``route`` over ``HubBackend``; the Worker's ``Default.fetch``; the API function's ``lambda_handler``)
-> the hub's dispatch -> a ``task:execute`` frame -> the echo agent -> its ``task:result`` -> the answer.
The serverless hubs run on the tests' stand-ins (tests/serverless_bridge/), so what is timed is this
project's code on each path (the Worker's objects and relay; the Lambda's DynamoDB rows, posts and polling,
with moto standing in for DynamoDB and a loopback server for API Gateway), not the cloud's network or its
services' latency. Sequential calls (one in flight), after a warm-up.

Run with `make bench-serverless-bridge`; figures go to serverless_bridge.json. No target: the figures show
where each hub's own overhead lies, beside the process hub's.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(ROOT))
from machine import describe  # noqa: E402

RESULTS = Path(__file__).parent / "results" / "serverless_bridge.json"
CLIENT_KEY = "bench-client-key-0123456789"
AUTH = {"Authorization": f"Bearer {CLIENT_KEY}"}


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


async def time_calls(call: Any, rounds: int, warmup: int) -> dict[str, float]:
    for n in range(warmup):
        status, body = await call(f"warm {n}")
        assert status == 200, body
    times = []
    for n in range(rounds):
        started = time.perf_counter()
        status, body = await call(f"task {n}")
        times.append((time.perf_counter() - started) * 1000)
        assert status == 200 and body["result"][0]["content"] == f"echo: task {n} []", body
    return {"rounds": rounds, "p50_ms": statistics.median(times), "p99_ms": percentile(times, 99),
            "mean_ms": statistics.fmean(times), "tasks_per_s": 1000 / statistics.fmean(times)}


async def process_hub(rounds: int, warmup: int) -> dict[str, float]:
    from lmstudio_agent.endpoint.router import route
    from lmstudio_hub import BridgeHub
    from lmstudio_hub.http import HubBackend
    from tests.bridge.helpers import TOKEN, Agents

    hub = BridgeHub(TOKEN)
    await hub.start("127.0.0.1", 0)
    agents = Agents()
    try:
        await agents.start(hub.url, agent_id="agent-1")
        backend = HubBackend(hub)

        async def call(instruction: str) -> tuple[int, Any]:
            answer = await route("POST", "/execute", AUTH, json.dumps({"instruction": instruction}), backend=backend,
                                 api_key=CLIENT_KEY)
            return answer.status, answer.body

        return await time_calls(call, rounds, warmup)
    finally:
        await agents.close()
        await hub.stop()


async def serverless_hub(kind: str, rounds: int, warmup: int) -> dict[str, float]:
    from tests.bridge.helpers import Agents
    from tests.serverless_bridge.conftest import TOOLS, agents_text, token_of

    if kind == "cloudflare":
        from tests.serverless_bridge.cloudflare_hub import CloudflareHub

        hub: Any = await CloudflareHub(agents_text(), CLIENT_KEY).start()
    else:
        from tests.serverless_bridge.aws_hub import AwsHub

        hub = await AwsHub(agents_text(), CLIENT_KEY).start()
    agents = Agents()
    try:
        await agents.start(hub.url, agent_id="agent-1", token=token_of("agent-1"), tools=TOOLS,
                           ping_interval=20.0, ping_timeout=20.0)

        async def call(instruction: str) -> tuple[int, Any]:
            return await hub.request("POST", "/execute", {"instruction": instruction}, AUTH)

        return await time_calls(call, rounds, warmup)
    finally:
        await agents.close()
        await hub.stop()


async def main_async(rounds: int, warmup: int) -> dict[str, Any]:
    return {
        "process_hub": await process_hub(rounds, warmup),
        "cloudflare_durable_objects": await serverless_hub("cloudflare", rounds, warmup),
        "aws_api_gateway_websocket": await serverless_hub("aws", rounds, warmup),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    import contextlib
    import io
    import logging

    logging.disable(logging.WARNING)
    # The Lambda's Powertools metrics lines (stdout) and the agents' teardown would drown the figures.
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        hubs = asyncio.run(main_async(args.rounds, args.warmup))
    result = {"recorded_at": time.strftime("%Y-%m-%d"), "machine": describe(), "hubs": hubs,
              "what": "POST /execute round trip through each hub's entry point to one echo agent on loopback, "
                      "one in flight; the serverless hubs on the tests' stand-ins (our code, not the cloud's)"}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    for name, figures in hubs.items():
        print(f"{name:<28} p50 {figures['p50_ms']:7.2f} ms  p99 {figures['p99_ms']:7.2f} ms  "
              f"{figures['tasks_per_s']:8.0f} tasks/s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
