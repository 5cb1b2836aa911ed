"""MCP tools in the agent loop, beside Python tools, in each tool-call mode, against the loopback OpenAI stub
(a real HTTP server) and a real MCP server over stdio."""

from __future__ import annotations

import json
import os

import pytest

from lmstudio_agent import LMStudioAgent
from lmstudio_agent.errors import AgentError, ErrorCode
from tests.support.openai_stub import MODEL_ID, json_content, text, tool_call

from .conftest import stdio_entry

MCP_JSON = {"mcpServers": {"weather": stdio_entry("weather", allowedTools=["forecast", "fail", "crash", "add", "pid"])}}
FORECAST_SCHEMA = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}


def make_agent(stub, mode: str, **options) -> LMStudioAgent:
    return LMStudioAgent(model_name=MODEL_ID, base_url=stub.base_url, api_key="k", tool_mode=mode,
                         mcp_config=MCP_JSON, **options)


def kinds(transcript):
    return [(m.type, m.tool) for m in transcript]


async def test_native_mode_calls_an_mcp_tool(openai_stub):
    openai_stub.enqueue(tool_call("forecast", {"city": "Paris"}), text("It is sunny in Paris."))
    async with make_agent(openai_stub, "native") as agent:
        await agent.aload_model()
        transcript = await agent.aact("Weather in Paris?", tools=["forecast", "analyze_sentiment"])
    assert kinds(transcript) == [("action", "forecast"), ("result", "forecast"), ("result", None)]
    assert transcript[1].content == "Sunny and 21 C in Paris"
    offered = {t["function"]["name"]: t["function"] for t in openai_stub.chat_requests[0]["tools"]}
    assert set(offered) == {"forecast", "analyze_sentiment", "terminate"}
    assert offered["forecast"]["parameters"] == FORECAST_SCHEMA
    assert offered["forecast"]["description"].startswith("Weather forecast for a city.")
    tool_message = openai_stub.chat_requests[1]["messages"][-1]
    assert tool_message["role"] == "tool" and "Sunny and 21 C in Paris" in tool_message["content"]


async def test_parsed_mode_calls_an_mcp_tool(openai_stub):
    openai_stub.enqueue(text('<|tool_call_start|>[forecast(city="Rome")]<|tool_call_end|>'), text("Sunny in Rome."))
    async with make_agent(openai_stub, "parsed") as agent:
        await agent.aload_model()
        transcript = await agent.aact("Weather in Rome?", tools=["forecast"])
    assert kinds(transcript) == [("action", "forecast"), ("result", "forecast"), ("result", None)]
    assert transcript[0].args == {"city": "Rome"} and transcript[1].content == "Sunny and 21 C in Rome"
    system = openai_stub.chat_requests[0]["messages"][0]["content"]
    assert "forecast" in system and "city" in system  # the MCP tool and its schema, listed in the prompt
    assert "tools" not in openai_stub.chat_requests[0]


async def test_constrained_mode_calls_an_mcp_tool(openai_stub):
    openai_stub.enqueue(json_content({"name": "forecast", "arguments": {"city": "Bern"}}),
                        json_content({"name": "terminate", "arguments": {"message": "Sunny in Bern"}}))
    async with make_agent(openai_stub, "constrained") as agent:
        await agent.aload_model()
        transcript = await agent.aact("Weather in Bern?", tools=["forecast"])
    assert kinds(transcript) == [("action", "forecast"), ("result", "forecast"), ("action", "terminate"),
                                 ("result", None)]
    assert transcript[1].content == "Sunny and 21 C in Bern" and transcript[-1].content == "Sunny in Bern"
    schema = json.dumps(openai_stub.chat_requests[0]["response_format"]["json_schema"]["schema"])
    assert '"const": "forecast"' in schema and '"city"' in schema  # the grammar holds the MCP tool's schema


async def test_a_raising_mcp_tool_is_fed_back_to_the_model(openai_stub):
    openai_stub.enqueue(tool_call("fail", {"reason": "no network"}), text("Sorry, that failed."))
    async with make_agent(openai_stub, "native") as agent:
        await agent.aload_model()
        transcript = await agent.aact("Try it", tools=["fail"])
    error = transcript[1]
    assert (error.type, error.tool, error.code) == ("error", "fail", ErrorCode.TOOL_EXECUTION_FAILED.value)
    assert "cannot do it: no network" in error.content
    fed_back = openai_stub.chat_requests[1]["messages"][-1]["content"]
    assert fed_back.startswith("Error:") and "cannot do it: no network" in fed_back
    # every call failed: the run says so (NO_ANSWER), with the model's words kept in the message
    assert transcript[-1].code == ErrorCode.NO_ANSWER.value and "Sorry, that failed." in transcript[-1].content


async def test_a_server_that_exits_mid_run_is_an_error_the_run_survives(openai_stub):
    openai_stub.enqueue(tool_call("crash", {}), tool_call("add", {"a": 1, "b": 2}), text("The tools are down."))
    async with make_agent(openai_stub, "native", max_rounds=4) as agent:
        await agent.aload_model()
        transcript = await agent.aact("Crash it, then add", tools=["crash", "add", "extract_data"])
    errors = [m for m in transcript if m.type == "error" and m.tool]
    assert [(e.tool, e.code) for e in errors] == [("crash", "TOOL_EXECUTION_FAILED"), ("add", "TOOL_EXECUTION_FAILED")]
    assert "MCP server 'weather' went away" in errors[0].content and "not available" in errors[1].content
    assert transcript[-1].code == ErrorCode.NO_ANSWER.value and "The tools are down." in transcript[-1].content


def test_the_sync_api_starts_and_stops_the_servers_for_each_call(openai_stub):
    openai_stub.enqueue(tool_call("pid", {}), text("done"))
    agent = make_agent(openai_stub, "native")
    agent.load_model()
    assert not agent.mcp_servers.running  # started to check they work, stopped with the call's event loop
    transcript = agent.act("Which pid?", tools=["pid"])
    pid = int(transcript[1].content)
    assert not agent.mcp_servers.running
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


async def test_mcp_tools_beside_python_tools_and_a_clash_is_prefixed(openai_stub):
    def add(a: int, b: int) -> int:
        """A Python tool that has the MCP tool's name."""
        return a + b

    agent = make_agent(openai_stub, "native", tools=[add])
    async with agent:
        names = agent.tools.names()
        assert "add" in names and "weather_add" in names and "forecast" in names
        assert agent.tools.get("add").function is add
    assert agent.tools.names() == agent.registry.names()  # stopped: only the Python tools are left


async def test_an_unstartable_server_fails_load_model(openai_stub):
    agent = LMStudioAgent(model_name=MODEL_ID, base_url=openai_stub.base_url, api_key="k", tool_mode="native",
                          mcp_config={"mcpServers": {"broken": {"command": "/nonexistent/mcp-binary"}}})
    with pytest.raises(AgentError) as caught:
        await agent.aload_model()
    assert caught.value.code is ErrorCode.CONNECTION_FAILED and "broken" in caught.value.message
    await agent.aclose()
