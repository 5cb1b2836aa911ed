"""End to end with real processes and real agents: ``lmstudio-agent bridge serve`` as a subprocess, real
LMStudioAgents (``connect_to_bridge`` and ``bridge agent``) against the scripted loopback OpenAI-protocol
server, and clients calling the hub's HTTP ``/execute``."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import subprocess
import sys
import time

import httpx
import pytest

from lmstudio_hub.http import HubHttpApp, HubHttpServer
from lmstudio_agent.endpoint.cache import MemoryCacheStore
from lmstudio_agent.lmstudio import LMStudioAgent
from tests.support.openai_stub import MODEL_ID, text, tool_call

from .helpers import TOKEN

HUB_TOKEN = "hub-agent-token-0123456789"
HUB_KEY = "hub-client-key-0123456789"
CLI = [sys.executable, "-m", "lmstudio_agent.cli"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_line(proc: subprocess.Popen, pattern: str, timeout: float = 20.0) -> re.Match:
    deadline = time.monotonic() + timeout
    seen = []
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            if proc.poll() is not None:
                break
            continue
        seen.append(line)
        match = re.search(pattern, line)
        if match:
            return match
    raise AssertionError(f"no line matching {pattern!r}; output so far: {''.join(seen)}")


@pytest.fixture
def hub_process():
    ws_port, http_port = free_port(), free_port()
    env = {**os.environ, "BRIDGE_TOKEN": HUB_TOKEN, "BRIDGE_API_KEY": HUB_KEY, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [*CLI, "bridge", "serve", "--port", str(ws_port), "--http-port", str(http_port), "--log-level", "warning"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        wait_for_line(proc, r"AI Bridge hub: agents ws://")
        yield f"ws://127.0.0.1:{ws_port}", f"http://127.0.0.1:{http_port}", proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
        proc.stdout.close()


def test_serve_refuses_weak_or_missing_secrets():
    env = {k: v for k, v in os.environ.items() if not k.startswith("BRIDGE_")}
    missing = subprocess.run([*CLI, "bridge", "serve", "--api-key", HUB_KEY], env=env, capture_output=True, text=True,
                             timeout=30)
    assert missing.returncode == 2 and "--token" in missing.stderr and "--agents-file" in missing.stderr
    weak = subprocess.run([*CLI, "bridge", "serve", "--token", "short", "--api-key", HUB_KEY], env=env,
                          capture_output=True, text=True, timeout=30)
    assert weak.returncode == 2 and "at least 16 characters" in weak.stderr


def test_hub_process_with_an_agent_process_on_the_scripted_model(hub_process, openai_stub):
    """The README's flow: hub, `bridge agent` connecting out to it, a client POSTing /execute to the hub."""
    ws_url, http_url, hub = hub_process
    openai_stub.default = text("Bonjour from the scripted model.")
    agent = subprocess.Popen(
        [*CLI, "bridge", "agent", "--bridge-url", ws_url, "--base-url", openai_stub.base_url, "--model", MODEL_ID,
         "--mode", "native", "--agent-id", "home-pc"],
        env={**os.environ, "BRIDGE_TOKEN": HUB_TOKEN}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        wait_for_line(agent, r"agent home-pc registered with")
        with httpx.Client(base_url=http_url, timeout=30) as client:
            assert client.get("/health").json()["status"] == "healthy"
            response = client.post("/execute", json={"instruction": "Say hello in French", "tools": []},
                                   headers={"Authorization": f"Bearer {HUB_KEY}"})
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["success"] is True and body["cached"] is False
        assert body["result"][-1] == {"type": "result", "content": "Bonjour from the scripted model."}
        prompt = openai_stub.chat_requests[-1]["messages"]
        assert any("Say hello in French" in (m.get("content") or "") for m in prompt)
        # SIGTERM stops the agent cleanly; the hub notices it left.
        agent.send_signal(signal.SIGTERM)
        assert agent.wait(15) == 0
        with httpx.Client(base_url=http_url, timeout=30) as client:
            gone = client.post("/execute", json={"instruction": "anyone?"}, headers={"X-Api-Key": HUB_KEY})
        assert gone.status_code == 503 and gone.json()["code"] == "NO_AGENT_AVAILABLE"
    finally:
        if agent.poll() is None:
            agent.kill()
        agent.stdout.close()
    hub.send_signal(signal.SIGTERM)
    assert hub.wait(15) == 0


def test_bridge_agent_with_a_bad_token_exits_with_the_code(hub_process, openai_stub):
    ws_url, _, _ = hub_process
    result = subprocess.run(
        [*CLI, "bridge", "agent", "--bridge-url", ws_url, "--base-url", openai_stub.base_url, "--model", MODEL_ID,
         "--mode", "native"],
        env={**os.environ, "BRIDGE_TOKEN": "not-the-token"}, capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 2 and "FORBIDDEN" in result.stderr and "Traceback" not in result.stderr


def test_bridge_agent_with_no_hub_exits_connection_failed(openai_stub):
    result = subprocess.run(
        [*CLI, "bridge", "agent", "--bridge-url", f"ws://127.0.0.1:{free_port()}", "--base-url", openai_stub.base_url,
         "--model", MODEL_ID, "--mode", "native"],
        env={**os.environ, "BRIDGE_TOKEN": HUB_TOKEN}, capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 2 and "CONNECTION_FAILED" in result.stderr and "not reachable" in result.stderr


# ------------------------------------------------------------------ LMStudioAgent.connect_to_bridge in-process


def lm_agent(openai_stub, agent_id: str, url: str) -> LMStudioAgent:
    return LMStudioAgent(model_name=MODEL_ID, bridge_url=url, agent_id=agent_id, base_url=openai_stub.base_url,
                         tool_mode="native", bridge_token=TOKEN)


async def start_lm_agent(agent: LMStudioAgent, hub) -> asyncio.Task:
    task = asyncio.create_task(agent.connect_to_bridge())
    for _ in range(250):
        if any(a.agent_id == agent.agent_id for a in hub.agents()) or task.done():
            break
        await asyncio.sleep(0.02)
    if task.done():
        task.result()
    return task


async def test_connect_to_bridge_unreachable_raises_connection_error(openai_stub):
    agent = lm_agent(openai_stub, "lonely", f"ws://127.0.0.1:{free_port()}")
    with pytest.raises(ConnectionError) as info:
        await asyncio.wait_for(agent.connect_to_bridge(), 20)
    assert info.value.code.value == "CONNECTION_FAILED"
    await agent.client.aclose()


async def test_lmstudio_agents_run_tools_through_the_hub_over_http(hub, openai_stub):
    """A real LMStudioAgent serves an /execute that calls a built-in tool; the tools it announces are its own."""
    agent = lm_agent(openai_stub, "lm-1", hub.url)
    serving = await start_lm_agent(agent, hub)
    try:
        (info,) = hub.agents()
        assert info.model == MODEL_ID and "analyze_sentiment" in info.tools and "store_invoice" in info.tools
        server = HubHttpServer(HubHttpApp(hub, api_key=HUB_KEY, cache=MemoryCacheStore()))
        await server.start("127.0.0.1", 0)
        try:
            openai_stub.enqueue(
                tool_call("analyze_sentiment", {"text": "I love this product"}),
                # the tool's own model calls: its answer, then 4 sampled votes (the stub gives no logprobs)
                *[text('{"sentiment": "positive"}') for _ in range(5)],
                text("The feedback is positive."),
            )
            async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
                response = await client.post(
                    "/execute",
                    json={"instruction": "Analyze: I love this product", "tools": ["analyze_sentiment"], "model": MODEL_ID},
                    headers={"Authorization": f"Bearer {HUB_KEY}"},
                )
                assert response.status_code == 200, response.text
                result = response.json()["result"]
                assert {"type": "action", "tool": "analyze_sentiment", "args": {"text": "I love this product"}} in result
                assert result[-1]["type"] == "result" and result[-1]["content"]
                # A tool the agent does not have is refused before any agent runs.
                refused = await client.post("/execute", json={"instruction": "x", "tools": ["rm_rf"]},
                                            headers={"Authorization": f"Bearer {HUB_KEY}"})
                assert refused.status_code == 400 and refused.json()["code"] == "UNKNOWN_TOOL"
        finally:
            await server.stop()
    finally:
        serving.cancel()
        await asyncio.gather(serving, return_exceptions=True)
        await agent.client.aclose()


async def test_an_lmstudio_agent_killed_mid_task_is_finished_by_another(hub, openai_stub):
    first, second = lm_agent(openai_stub, "lm-a", hub.url), lm_agent(openai_stub, "lm-b", hub.url)
    serving_a = await start_lm_agent(first, hub)
    openai_stub.enqueue(text("slow answer from a", delay=3.0))
    submitted = asyncio.create_task(hub.submit("Finish this", ["extract_data"]))
    for _ in range(200):
        if openai_stub.chat_requests:
            break
        await asyncio.sleep(0.02)
    assert openai_stub.chat_requests, "agent a never called the model"
    serving_b = await start_lm_agent(second, hub)
    openai_stub.default = text("answer from b")
    serving_a.cancel()  # agent a goes away mid-task
    result = await asyncio.wait_for(submitted, 20)
    assert result[-1].content == "answer from b"
    assert hub.stats.requeued == 1 and hub.stats.completed == 1
    serving_b.cancel()
    await asyncio.gather(serving_a, serving_b, return_exceptions=True)
    for agent in (first, second):
        await agent.client.aclose()


def test_bridge_agent_mode_offers_the_tool_modes_and_refuses_others_cleanly():
    shown = subprocess.run([*CLI, "bridge", "agent", "--help"], capture_output=True, text=True, timeout=60,
                           env={**os.environ, "COLUMNS": "200", "NO_COLOR": "1"})
    assert shown.returncode == 0
    for mode in ("auto", "native", "parsed", "constrained"):
        assert mode in shown.stdout
    assert "grammar" not in shown.stdout and "prompt" not in shown.stdout
    refused = subprocess.run([*CLI, "bridge", "agent", "--token", "t" * 20, "--mode", "grammar"],
                             capture_output=True, text=True, timeout=60)
    assert refused.returncode == 2 and "Traceback" not in refused.stderr
    assert "grammar" in refused.stderr
