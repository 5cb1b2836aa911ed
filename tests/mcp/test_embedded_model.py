"""One run on the real embedded model (SmolLM2-135M behind gateway-model, grammar-constrained calls) that calls a
tool of a real MCP server over stdio."""

from __future__ import annotations

import pytest

from lmstudio_agent import LMStudioAgent

from .conftest import stdio_entry

pytestmark = [pytest.mark.model, pytest.mark.slow]


async def test_the_embedded_model_calls_an_mcp_tool(embedded_model):
    mcp_json = {"mcpServers": {"weather": stdio_entry("weather", allowedTools=["forecast"])}}
    agent = LMStudioAgent(model_name=embedded_model.model, base_url=embedded_model.base_url,
                          api_key=embedded_model.api_key, mcp_config=mcp_json, max_rounds=3, run_timeout=240)
    async with agent:
        await agent.aload_model()
        assert agent.tool_mode.value == "constrained"  # the 135M model has no native tool use
        transcript = await agent.aact("What is the weather forecast for Paris?", tools=["forecast"])
    actions = [m for m in transcript if m.type == "action"]
    assert actions and actions[0].tool == "forecast"
    assert actions[0].args == {"city": "Paris"}  # copied from the request by the grammar
    result = next(m for m in transcript if m.type == "result" and m.tool == "forecast")
    assert result.content == "Sunny and 21 C in Paris"  # the MCP server's answer
    assert transcript[-1].type == "result"
    assert not agent.mcp_servers.running
