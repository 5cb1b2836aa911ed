"""``--mcp-config`` on ``lmstudio-agent run`` and ``lmstudio-agent bridge agent``, run as real processes."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys

import httpx

from lmstudio_hub import BridgeHub
from lmstudio_hub.http import HubHttpApp, HubHttpServer
from lmstudio_agent.endpoint.contract import ExecuteOptions
from tests.support.openai_stub import MODEL_ID, text, tool_call

from .conftest import ENV_SECRET, stdio_entry

TOKEN = "hub-token-for-mcp-cli-tests"
API_KEY = "client-key-for-mcp-cli-0123"


def write_config(tmp_path, **entry_options) -> str:
    path = tmp_path / "mcp.json"
    path.write_text(json.dumps({"mcpServers": {"weather": stdio_entry("weather", **entry_options)}}))
    return str(path)


def test_run_with_mcp_config_calls_the_mcp_tool(openai_stub, tmp_path):
    openai_stub.enqueue(tool_call("forecast", {"city": "Kyiv"}), text("Sunny in Kyiv."))
    proc = subprocess.run(
        [sys.executable, "-m", "lmstudio_agent.cli", "run", "Weather in Kyiv?", "--base-url", openai_stub.base_url,
         "--model", MODEL_ID, "--mode", "native", "--tool", "forecast", "--json",
         "--mcp-config", write_config(tmp_path)],
        capture_output=True, text=True, timeout=120, env={**os.environ, "LM_API_TOKEN": "k"},
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    events = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    assert events[0] == {"type": "action", "tool": "forecast", "args": {"city": "Kyiv"}}
    assert events[1] == {"type": "result", "tool": "forecast", "content": "Sunny and 21 C in Kyiv"}
    assert events[-1]["content"] == "Sunny in Kyiv."


def test_run_with_a_bad_mcp_config_says_what_is_wrong(openai_stub, tmp_path):
    path = tmp_path / "mcp.json"
    path.write_text(json.dumps({"mcpServers": {"x": {"url": "http://h/mcp", "command": "y"}}}))
    proc = subprocess.run(
        [sys.executable, "-m", "lmstudio_agent.cli", "run", "hi", "--base-url", openai_stub.base_url,
         "--mcp-config", str(path)], capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 2
    assert "INVALID_REQUEST" in proc.stderr and "mcpServers.x" in proc.stderr and "Traceback" not in proc.stderr


async def test_bridge_agent_offers_mcp_tools_and_stops_its_servers_on_sigterm(openai_stub, tmp_path):
    hub = BridgeHub(TOKEN, ping_interval=5, ping_timeout=5, task_timeout=20, default_deadline=30)
    await hub.start("127.0.0.1", 0)
    server = HubHttpServer(HubHttpApp(hub, api_key=API_KEY, options=ExecuteOptions(deadline_seconds=30)))
    await server.start("127.0.0.1", 0)
    agent = subprocess.Popen(
        [sys.executable, "-m", "lmstudio_agent.bridge.cli", "agent", "--bridge-url", hub.url,
         "--base-url", openai_stub.base_url, "--model", MODEL_ID, "--mode", "native", "--agent-id", "cli-agent",
         "--tool", "extract_data", "--log-level", "debug",
         "--mcp-config", write_config(tmp_path, allowedTools=["pid", "forecast"], env={"MCP_SECRET": ENV_SECRET})],
        env={**os.environ, "BRIDGE_TOKEN": TOKEN, "LM_API_TOKEN": "k"}, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True,
    )
    try:
        for _ in range(600):
            if hub.agents() or agent.poll() is not None:
                break
            await asyncio.sleep(0.05)
        assert agent.poll() is None, agent.stderr.read()[-2000:]
        (info,) = hub.agents()
        assert set(info.tools) == {"extract_data", "pid", "forecast"}
        openai_stub.enqueue(tool_call("pid", {}), text("done"))
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
            response = await client.post("/execute", json={"instruction": "Your pid?", "tools": ["pid"]},
                                         headers={"Authorization": f"Bearer {API_KEY}"})
        assert response.status_code == 200, response.text
        mcp_pid = int(response.json()["result"][1]["content"])
        os.kill(mcp_pid, 0)  # the MCP server runs, as the agent's child
    finally:
        agent.send_signal(signal.SIGTERM)
        try:
            agent.wait(30)
        finally:
            agent.kill() if agent.poll() is None else None
            await server.stop()
            await hub.stop()
    assert agent.returncode == 0, agent.stderr.read()[-2000:]
    for _ in range(100):  # SIGTERM stopped the agent, which ended its MCP server
        try:
            os.kill(mcp_pid, 0)
        except ProcessLookupError:
            break
        await asyncio.sleep(0.05)
    else:
        raise AssertionError(f"the MCP server {mcp_pid} outlived the agent")
    logs = agent.stderr.read()
    assert "MCP server weather" in logs and ENV_SECRET not in logs  # debug logs, and still no secret


def test_without_the_mcp_extra_the_flag_says_what_to_install(tmp_path):
    code = ("import sys; sys.modules['mcp'] = None;"  # as if the SDK were not installed
            "from lmstudio_agent.cli import main;"
            f"sys.argv = ['lmstudio-agent', 'run', 'hi', '--mcp-config', {write_config(tmp_path)!r}]; main()")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert "pip install 'lmstudio-agent[mcp]'" in proc.stderr and "Traceback" not in proc.stderr
