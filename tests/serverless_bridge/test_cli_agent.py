"""The real agent process, ``lmstudio-agent bridge agent``, on each serverless hub: it connects out to the
hub's stand-in front over a real socket, registers with its own token, runs a client's ``/execute`` on the
scripted OpenAI-protocol model server, and leaves the directory when stopped. Only the URL differs from the
process hub's test (tests/bridge/test_cli_and_real_agents.py)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess

from tests.bridge.test_cli_and_real_agents import CLI, wait_for_line
from tests.support.openai_stub import MODEL_ID, text

from .conftest import AUTH, token_of


async def test_the_agent_cli_serves_a_serverless_hub(serverless_hub, openai_stub):
    hub = serverless_hub
    openai_stub.default = text("Bonjour from the scripted model.")
    agent = subprocess.Popen(
        [*CLI, "bridge", "agent", "--bridge-url", hub.url, "--base-url", openai_stub.base_url, "--model", MODEL_ID,
         "--mode", "native", "--agent-id", "agent-1"],
        env={**os.environ, "BRIDGE_TOKEN": token_of("agent-1"), "PYTHONUNBUFFERED": "1"},
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        await asyncio.to_thread(wait_for_line, agent, r"agent agent-1 registered with", 60.0)
        assert await hub.online() == ["agent-1"]
        status, body = await hub.request("POST", "/execute", {"instruction": "Say hello in French", "tools": []}, AUTH)
        assert status == 200, body
        assert body["success"] is True and body["result"][-1] == {"type": "result", "content": "Bonjour from the scripted model."}
        prompt = openai_stub.chat_requests[-1]["messages"]
        assert any("Say hello in French" in (m.get("content") or "") for m in prompt)
        agent.send_signal(signal.SIGTERM)  # a clean stop: the close reaches the hub, which forgets the agent
        assert await asyncio.to_thread(agent.wait, 20) == 0
        async with asyncio.timeout(10):
            while await hub.online():
                await asyncio.sleep(0.05)
        status, body = await hub.request("POST", "/execute", {"instruction": "anyone?"}, AUTH)
        assert status == 503 and body["code"] == "NO_AGENT_AVAILABLE"
    finally:
        if agent.poll() is None:
            agent.kill()
        agent.stdout.close()


async def test_the_agent_cli_exits_with_the_code_when_its_token_is_refused(serverless_hub, openai_stub):
    hub = serverless_hub
    done = await asyncio.to_thread(
        subprocess.run,
        [*CLI, "bridge", "agent", "--bridge-url", hub.url, "--base-url", openai_stub.base_url, "--model", MODEL_ID,
         "--mode", "native", "--agent-id", "agent-1"],
        env={**os.environ, "BRIDGE_TOKEN": "a-token-nobody-has-0123456789"}, capture_output=True, text=True, timeout=60,
    )
    assert done.returncode == 2 and "FORBIDDEN" in done.stderr, done.stderr[-2000:]
