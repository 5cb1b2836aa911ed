"""The endpoints' shared backend (``service.AgentBackend`` under ``contract.handle_execute``, what the Lambda
runs) with MCP servers over streamable HTTP: only HTTP, only when configured; the allow-list and the cache rule
cover MCP tools; a server that went away is reconnected on the next request."""

from __future__ import annotations

import json

import pytest

from lmstudio_agent.endpoint import contract
from lmstudio_agent.endpoint.cache import MemoryCacheStore
from lmstudio_agent.errors import AgentError, ErrorCode
from lmstudio_agent.mcp import MCPConfigError, MCPServers
from lmstudio_agent.endpoint.backend import AgentBackend, EndpointSettings
from tests.support.openai_stub import MODEL_ID, text, tool_call

from .conftest import start_http_server, stdio_entry


def settings(stub, **overrides) -> EndpointSettings:
    return EndpointSettings(lm_studio_url=stub.base_url, model=MODEL_ID, tool_mode="native", **overrides)


async def execute(backend, cache, instruction, tools):
    await backend.start()
    response = await contract.handle_execute(json.dumps({"instruction": instruction, "tools": tools}), {}, backend,
                                             cache=cache)
    return response.status, response.body


async def test_the_shared_backend_uses_http_mcp_tools_with_the_allow_list_and_the_cache_rule(openai_stub, http_server):
    servers = MCPServers({"mcpServers": {"remote": http_server.entry()}}, allow_stdio=False)
    backend = AgentBackend(settings(openai_stub, allowed_tools=["forecast", "send_email", "extract_data"]),
                           mcp_servers=servers)
    cache = MemoryCacheStore()
    try:
        await backend.start()
        assert sorted(backend.registry.names()) == ["extract_data", "forecast", "send_email"]
        openai_stub.enqueue(tool_call("forecast", {"city": "Riga"}), text("Sunny in Riga."))
        status, body = await execute(backend, cache, "Weather in Riga?", ["forecast"])
        assert status == 200 and body["result"][1]["content"] == "Sunny and 21 C in Riga"
        assert (await execute(backend, cache, "Weather in Riga?", ["forecast"]))[1]["cached"] is True
        for _ in range(2):  # no annotations: side effects, so never cached
            openai_stub.enqueue(tool_call("send_email", {"to": "a@b.c", "body": "x"}), text("Sent."))
            status, body = await execute(backend, cache, "Mail a@b.c", ["send_email"])
            assert status == 200 and body["cached"] is False
        status, body = await execute(backend, cache, "Add", ["add"])  # offered by the server, not allowed here
        assert status == 400 and body["code"] == "UNKNOWN_TOOL"
    finally:
        await backend.aclose()
    assert not servers.running


async def test_a_server_that_went_away_is_reconnected_on_the_next_request(openai_stub):
    first = start_http_server("remote")
    servers = MCPServers({"mcpServers": {"remote": first.entry(allowedTools=["crash", "pid"])}}, allow_stdio=False)
    backend = AgentBackend(settings(openai_stub), mcp_servers=servers)
    cache = MemoryCacheStore()
    second = None
    try:
        openai_stub.enqueue(tool_call("crash", {}), text("It broke."))
        status, body = await execute(backend, cache, "Crash", ["crash"])
        # its only call failed: success false (NO_ANSWER), the transcript kept in the body
        assert status == 422 and body["code"] == "NO_ANSWER" and body["result"][1]["code"] == "TOOL_EXECUTION_FAILED"
        first.process.wait(10)
        assert not servers.healthy
        # While the server is down, the next request fails cleanly (CONNECTION_FAILED, a 500), without a hang.
        with pytest.raises(AgentError) as caught:
            await backend.start()
        assert caught.value.code is ErrorCode.CONNECTION_FAILED
        # Back on the same address: the next request connects a new session and reaches it.
        second = start_http_server("remote", port=int(first.url.split(":")[2].split("/")[0]))
        openai_stub.enqueue(tool_call("pid", {}), text("ok"))
        status, body = await execute(backend, cache, "Your pid?", ["pid"])
        assert status == 200 and body["result"][1]["content"] == str(second.process.pid)
    finally:
        await backend.aclose()
        first.process.stdout.close()
        if second is not None:
            second.process.terminate()
            second.process.wait(10)
            second.process.stdout.close()


def test_stdio_servers_are_refused_where_processes_cannot_run():
    with pytest.raises(MCPConfigError, match="only streamable HTTP"):
        MCPServers({"mcpServers": {"local": stdio_entry()}}, allow_stdio=False)
