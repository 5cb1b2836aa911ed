"""An agent at home offers its MCP tools to the hub like any other tool: a hub client's POST /execute reaches an
MCP tool that lives on the agent's side (a stdio server and a streamable HTTP server), and the cache rule
follows the tools' annotations."""

from __future__ import annotations

import asyncio

import httpx

from lmstudio_agent import LMStudioAgent
from lmstudio_hub import BridgeHub
from lmstudio_hub.http import HubHttpApp, HubHttpServer
from lmstudio_agent.endpoint.cache import MemoryCacheStore
from lmstudio_agent.endpoint.contract import ExecuteOptions
from tests.support.openai_stub import MODEL_ID, text, tool_call

from .conftest import stdio_entry

TOKEN = "hub-token-for-mcp-tests"
API_KEY = "client-key-for-mcp-tests-0123"


async def test_a_hub_client_reaches_mcp_tools_on_the_agents_side(openai_stub, http_server):
    hub = BridgeHub(TOKEN, ping_interval=5, ping_timeout=5, task_timeout=20, default_deadline=30)
    await hub.start("127.0.0.1", 0)
    server = HubHttpServer(HubHttpApp(hub, api_key=API_KEY, cache=MemoryCacheStore(),
                                      options=ExecuteOptions(deadline_seconds=30)))
    await server.start("127.0.0.1", 0)
    mcp_json = {"mcpServers": {
        "weather": stdio_entry("weather", allowedTools=["forecast"]),
        "mail": http_server.entry(allowedTools=["send_email"]),
    }}
    agent = LMStudioAgent(model_name=MODEL_ID, bridge_url=hub.url, agent_id="home-pc", base_url=openai_stub.base_url,
                          api_key="k", tool_mode="native", bridge_token=TOKEN, mcp_config=mcp_json)
    serving = asyncio.create_task(agent.connect_to_bridge())
    try:
        for _ in range(1500):
            if hub.agents() or serving.done():
                break
            await asyncio.sleep(0.02)
        if serving.done():
            serving.result()
        (info,) = hub.agents()
        assert {"forecast", "send_email", "extract_data"} <= set(info.tools)
        assert hub.has_side_effects(["send_email"]) and not hub.has_side_effects(["forecast"])

        async def execute(instruction: str, tools: list[str]) -> dict:
            async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
                response = await client.post("/execute", json={"instruction": instruction, "tools": tools},
                                             headers={"Authorization": f"Bearer {API_KEY}"})
            assert response.status_code == 200, response.text
            return response.json()

        # A read-only MCP tool over stdio: answered, then cached.
        openai_stub.enqueue(tool_call("forecast", {"city": "Lyon"}), text("Sunny in Lyon."))
        body = await execute("Weather in Lyon?", ["forecast"])
        assert body["success"] is True and body["cached"] is False
        assert body["result"][1] == {"type": "result", "tool": "forecast", "content": "Sunny and 21 C in Lyon"}
        assert (await execute("Weather in Lyon?", ["forecast"]))["cached"] is True

        # An MCP tool with side effects, on the streamable HTTP server: run each time, never cached.
        for _ in range(2):
            openai_stub.enqueue(tool_call("send_email", {"to": "ann@example.com", "body": "hi"}), text("Sent."))
            body = await execute("Email Ann: hi", ["send_email"])
            assert body["cached"] is False
            assert body["result"][1]["content"] == "sent to ann@example.com"
        assert agent.mcp_servers.running
    finally:
        serving.cancel()
        await asyncio.gather(serving, return_exceptions=True)
        stopped_with_the_agent = not agent.mcp_servers.running
        await server.stop()
        await hub.stop()
        await agent.aclose()
    assert stopped_with_the_agent  # the agent stopped serving: its MCP servers stopped with it
