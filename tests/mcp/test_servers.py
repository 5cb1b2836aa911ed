"""MCPServers against real MCP servers (FastMCP over stdio and over streamable HTTP on loopback): listing,
calls and results, failures, a server that exits mid-call, allow-lists, duplicate names, the side-effect
mapping, lifetimes and secrets."""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import time

import httpx
import pytest

from lmstudio_agent.errors import AgentError, ErrorCode
from lmstudio_agent.mcp import MCPConfigError, MCPServers, MCPTool

from .conftest import ENV_SECRET, HTTP_TOKEN, stdio_entry

SERVER_TOOLS = {"forecast", "add", "save_note", "send_email", "purge_cache", "fail", "crash", "slow", "lookup",
                "pid", "env_is_set"}


def config(**servers):
    return {"mcpServers": servers}


async def test_lists_the_tools_of_a_stdio_and_an_http_server(http_server):
    async with MCPServers(config(alpha=stdio_entry(allowedTools=["forecast", "add", "save_note"]),
                                 beta=http_server.entry(allowedTools=["pid", "send_email"]))) as servers:
        assert servers.tools.names() == ["forecast", "add", "save_note", "pid", "send_email"]
        forecast = servers.tools.get("forecast")
        assert isinstance(forecast, MCPTool) and forecast.server == "alpha" and forecast.remote_name == "forecast"
        # The MCP input schema is the tool's schema (titles dropped, as for Python tools).
        assert forecast.parameters == {"type": "object", "properties": {"city": {"type": "string"}},
                                       "required": ["city"]}
        assert forecast.description.startswith("Weather forecast for a city.")
        assert servers.tools.get("pid").server == "beta"
        assert {t.name for t in servers.connections["alpha"].tools} == SERVER_TOOLS


@pytest.mark.parametrize("transport", ["stdio", "http"])
async def test_calls_go_to_the_server_and_results_come_back(transport, request):
    entry = stdio_entry() if transport == "stdio" else request.getfixturevalue("http_server").entry()
    async with MCPServers(config(srv=entry)) as servers:
        tools = servers.tools
        assert await tools.get("forecast").call({"city": "Oslo"}) == "Sunny and 21 C in Oslo"  # {"result": x} unwrapped
        assert await tools.get("add").call({"a": 2, "b": 40}) == 42
        assert await tools.get("save_note").call({"text": "hi"}) == {"saved": "hi", "count": 1}  # structured content
        assert await tools.get("save_note").call({"text": "again"}) == {"saved": "again", "count": 2}  # one session
        # Arguments are checked against the MCP schema before anything is sent.
        with pytest.raises(AgentError) as caught:
            await tools.get("add").call({"a": "two"})
        assert caught.value.code is ErrorCode.TOOL_EXECUTION_FAILED
        assert "a: expected integer" in caught.value.message and "b: required" in caught.value.message


async def test_a_raising_tool_is_tool_execution_failed_with_the_servers_message():
    async with MCPServers(config(alpha=stdio_entry())) as servers:
        with pytest.raises(AgentError) as caught:
            await servers.tools.get("fail").call({"reason": "the disk is full"})
        assert caught.value.code is ErrorCode.TOOL_EXECUTION_FAILED
        assert "cannot do it: the disk is full" in caught.value.message
        assert await servers.tools.get("add").call({"a": 1, "b": 1}) == 2  # the server is fine afterwards


async def test_a_call_that_takes_too_long_times_out():
    async with MCPServers(config(alpha=stdio_entry(timeout=0.5))) as servers:
        started = time.monotonic()
        with pytest.raises(AgentError) as caught:
            await servers.tools.get("slow").call({"seconds": 30})
        assert time.monotonic() - started < 5
        assert caught.value.code is ErrorCode.TOOL_EXECUTION_FAILED and "within 0.5s" in caught.value.message


@pytest.mark.parametrize("transport", ["stdio", "http"])
async def test_a_server_that_exits_mid_call_gives_a_clear_error_not_a_hang(transport, request):
    entry = stdio_entry() if transport == "stdio" else request.getfixturevalue("http_server").entry()
    async with MCPServers(config(srv=entry)) as servers:
        started = time.monotonic()
        with pytest.raises(AgentError) as caught:
            await servers.tools.get("crash").call({})
        assert time.monotonic() - started < 15  # the call's own timeout is 60 s
        assert caught.value.code is ErrorCode.TOOL_EXECUTION_FAILED
        assert "MCP server 'srv'" in caught.value.message and "went away" in caught.value.message
        # Later calls fail at once, saying why.
        started = time.monotonic()
        with pytest.raises(AgentError, match="not available"):
            await servers.tools.get("add").call({"a": 1, "b": 2})
        assert time.monotonic() - started < 1


async def test_allow_lists_from_the_file_and_from_code():
    async with MCPServers(config(alpha=stdio_entry(allowedTools=["add"]))) as servers:
        assert servers.tools.names() == ["add"]
    async with MCPServers(config(alpha=stdio_entry(allowedTools=["add"])), allow={"alpha": ["pid", "lookup"]}) as servers:
        assert servers.tools.names() == ["pid", "lookup"]
    servers = MCPServers(config(alpha=stdio_entry(allowedTools=["add", "no_such_tool"])))
    with pytest.raises(AgentError) as caught:
        await servers.start()
    assert caught.value.code is ErrorCode.UNKNOWN_TOOL and "no_such_tool" in caught.value.message
    assert not servers.running and not servers.connections["alpha"].running
    with pytest.raises(MCPConfigError, match="unknown MCP server"):
        MCPServers(config(alpha=stdio_entry()), allow={"gamma": ["add"]})


async def test_duplicate_names_get_their_servers_prefix(http_server):
    servers = MCPServers(
        config(alpha=stdio_entry("alpha", allowedTools=["lookup", "add"]),
               beta=http_server.entry(allowedTools=["lookup", "pid"]),
               gamma=stdio_entry("gamma", allowedTools=["forecast"], prefix="wx")),
        reserved=["add"],  # a Python tool of the agent already has this name
    )
    async with servers:
        assert servers.tools.names() == ["alpha_lookup", "alpha_add", "beta_lookup", "pid", "wx_forecast"]
        assert await servers.tools.get("alpha_lookup").call({"key": "k"}) == "alpha:k"
        assert await servers.tools.get("beta_lookup").call({"key": "k"}) == "beta:k"
        assert servers.tools.get("wx_forecast").remote_name == "forecast"


async def test_annotations_map_onto_the_side_effect_flag():
    async with MCPServers(config(alpha=stdio_entry())) as servers:
        effects = {tool.name: tool.side_effects for tool in servers.tools}
        tags = {tool.name: tool.tags for tool in servers.tools}
    assert effects["forecast"] is False  # readOnlyHint
    assert effects["add"] is False
    assert effects["send_email"] is True  # no annotations at all
    assert effects["save_note"] is True  # writes, even though idempotent and not destructive
    assert effects["purge_cache"] is True  # read-only yet destructive: the conservative reading
    assert tags["forecast"] == ["mcp", "mcp:alpha", "read-only", "idempotent"]
    assert tags["purge_cache"] == ["mcp", "mcp:alpha", "read-only", "destructive"]


async def test_stopping_ends_the_stdio_process_and_the_http_session(http_server):
    servers = MCPServers(config(alpha=stdio_entry(), beta=http_server.entry()), reserved=())
    await servers.start()
    pid = await servers.tools.get("alpha_pid").call({})
    session_id = servers.connections["beta"].session_id
    assert session_id and await servers.tools.get("beta_pid").call({}) == http_server.process.pid
    await servers.stop()
    assert not servers.running and len(servers.tools) == 0
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    # The HTTP session was terminated (DELETE): the server no longer knows its id.
    async with httpx.AsyncClient(timeout=10) as client:
        response = await client.post(
            http_server.url,
            json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
            headers={"Authorization": f"Bearer {HTTP_TOKEN}", "Mcp-Session-Id": session_id,
                     "Accept": "application/json, text/event-stream", "MCP-Protocol-Version": "2025-06-18"},
        )
    assert response.status_code == 404
    await servers.stop()  # twice is fine


async def test_a_server_that_cannot_start_is_connection_failed_and_the_others_are_stopped(http_server):
    missing = {"command": "/nonexistent/mcp-server-binary"}
    servers = MCPServers(config(alpha=stdio_entry(), broken=missing))
    with pytest.raises(AgentError) as caught:
        await servers.start()
    assert caught.value.code is ErrorCode.CONNECTION_FAILED
    assert "MCP server 'broken'" in caught.value.message and "did not start" in caught.value.message
    assert not servers.connections["alpha"].running
    # A wrong bearer token: the HTTP server refuses, the message says so without the header.
    wrong = MCPServers(config(beta={"url": http_server.url, "headers": {"Authorization": "Bearer wrong-token-x"}}))
    with pytest.raises(AgentError) as caught:
        await wrong.start()
    assert caught.value.code is ErrorCode.CONNECTION_FAILED and "401" in caught.value.message
    assert "wrong-token-x" not in caught.value.message
    # Nothing listening at all.
    dead = MCPServers(config(gone={"url": "http://127.0.0.1:9/mcp"}), connect_timeout=5)
    with pytest.raises(AgentError, match="did not start"):
        await dead.start()


async def test_stdio_servers_can_be_refused_where_processes_cannot_run(http_server):
    with pytest.raises(MCPConfigError, match="only streamable HTTP"):
        MCPServers(config(alpha=stdio_entry(), beta=http_server.entry()), allow_stdio=False)
    async with MCPServers(config(beta=http_server.entry()), allow_stdio=False) as servers:
        assert "forecast" in servers.tools


async def test_env_and_headers_reach_the_server_and_never_a_log_line(http_server, caplog):
    caplog.set_level(logging.DEBUG)
    entry = stdio_entry(env={"MCP_SECRET_FOR_TEST": ENV_SECRET})
    async with MCPServers(config(alpha=entry, beta=http_server.entry())) as servers:
        assert await servers.tools.get("alpha_env_is_set").call({"variable": "MCP_SECRET_FOR_TEST"}) is True
        assert await servers.tools.get("beta_env_is_set").call({"variable": "MCP_SECRET_FOR_TEST"}) is False
        with pytest.raises(AgentError):
            await servers.tools.get("beta_fail").call({"reason": "x"})
        with pytest.raises(AgentError):
            await servers.tools.get("alpha_crash").call({})
        shown = repr(servers) + repr(servers.connections) + repr(servers.config)
    logged = caplog.text + "".join(str(record.__dict__) for record in caplog.records)
    assert "lmstudio_agent.mcp" in logged  # it did log: starting, stopping, a server gone
    for secret in (ENV_SECRET, HTTP_TOKEN):
        assert secret not in logged and secret not in shown


async def test_servers_can_be_started_and_stopped_from_different_tasks():
    servers = MCPServers(config(alpha=stdio_entry(allowedTools=["add"])))
    await asyncio.create_task(servers.start())
    assert await asyncio.create_task(servers.tools.get("add").call({"a": 1, "b": 2})) == 3
    await asyncio.create_task(servers.stop())
    assert not servers.running
