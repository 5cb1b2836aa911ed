"""The hub's HTTP API over real loopback HTTP (uvicorn): the shared contract's routes, auth and codes, with
each execute dispatched over a real WebSocket to an agent."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from lmstudio_hub.http import HubHttpApp, HubHttpServer
from lmstudio_agent.endpoint.cache import MemoryCacheStore
from lmstudio_agent.endpoint.contract import ExecuteOptions
from lmstudio_agent.errors import AgentError, ErrorCode
from lmstudio_agent.agent.messages import AgentMessage

from .helpers import MODEL, TOKEN, echo, raw_agent, recv_json

API_KEY = "client-key-for-the-hub"


@pytest.fixture
async def make_http(make_hub):
    servers: list[HubHttpServer] = []

    async def make(deadline: float = 3.0, **hub_overrides):
        hub = await make_hub(**hub_overrides)
        cache = MemoryCacheStore()
        options = ExecuteOptions(deadline_seconds=deadline)
        server = HubHttpServer(HubHttpApp(hub, api_key=API_KEY, cache=cache, options=options))
        await server.start("127.0.0.1", 0)
        servers.append(server)
        client = httpx.AsyncClient(base_url=server.url, timeout=10, headers={"Authorization": f"Bearer {API_KEY}"})
        return hub, cache, client

    yield make
    for server in servers:
        await server.stop()


async def test_health_is_open(make_http):
    _, _, client = await make_http()
    response = await client.get("/health", headers={"Authorization": ""})
    assert response.status_code == 200
    assert response.json()["status"] == "healthy" and isinstance(response.json()["timestamp"], int)
    assert response.headers["access-control-allow-origin"] == "*"


@pytest.mark.parametrize("headers, status, code", [({}, 401, "UNAUTHORIZED"), ({"Authorization": "Bearer nope"}, 403, "FORBIDDEN")])
async def test_execute_needs_the_api_key(make_http, headers, status, code):
    _, _, client = await make_http()
    async with httpx.AsyncClient(base_url=str(client.base_url)) as bare:
        response = await bare.post("/execute", json={"instruction": "x"}, headers=headers)
    assert response.status_code == status and response.json() == {"success": False, "error": response.json()["error"], "code": code}


async def test_agent_token_is_not_a_client_key(make_http):
    _, _, client = await make_http()
    response = await client.post("/execute", json={"instruction": "x"}, headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 403


async def test_execute_runs_on_an_agent_and_caches(make_http, agents):
    hub, cache, client = await make_http()
    calls: list[str] = []

    async def runner(instruction: str, tools: list[str]) -> list[AgentMessage]:
        calls.append(instruction)
        return [AgentMessage(type="thought", content="thinking"), AgentMessage(type="result", content=f"done: {instruction}")]

    await agents.start(hub.url, runner)
    body = {"instruction": "Summarise: cats", "tools": ["analyze_sentiment"], "model": MODEL}
    first = await client.post("/execute", json=body)
    assert first.status_code == 200
    assert first.json() == {
        "success": True,
        "result": [{"type": "thought", "content": "thinking"}, {"type": "result", "content": "done: Summarise: cats"}],
        "cached": False,
    }
    second = await client.post("/execute", json={**body, "instruction": "  Summarise:   cats "})
    assert second.json()["cached"] is True and calls == ["Summarise: cats"]


async def test_side_effect_tools_are_not_cached(make_http, agents):
    hub, cache, client = await make_http()
    await agents.start(hub.url, echo, tools=("store_invoice",), side_effect_tools=("store_invoice",))
    for _ in range(2):
        response = await client.post("/execute", json={"instruction": "store #1", "tools": ["store_invoice"]})
        assert response.status_code == 200 and response.json()["cached"] is False


async def test_unknown_tool_and_no_agent(make_http, agents):
    hub, _, client = await make_http()
    response = await client.post("/execute", json={"instruction": "x"})
    assert response.status_code == 503 and response.json()["code"] == "NO_AGENT_AVAILABLE"
    assert response.headers["retry-after"] == str(hub.retry_after_seconds)
    await agents.start(hub.url, tools=("extract_data",))
    response = await client.post("/execute", json={"instruction": "x", "tools": ["rm_rf"]})
    assert response.status_code == 400 and response.json()["code"] == "UNKNOWN_TOOL"
    assert "rm_rf" in response.json()["error"] and "extract_data" in response.json()["error"]
    response = await client.post("/execute", json={"instruction": "x", "model": "not-served"})
    assert response.status_code == 503 and response.json()["code"] == "NO_AGENT_AVAILABLE"


async def test_a_known_tool_whose_agents_left_is_no_agent_not_unknown(make_http, agents):
    hub, _, client = await make_http()
    await agents.start(hub.url, tools=("extract_data",), agent_id="leaves")
    await agents.start(hub.url, tools=("analyze_sentiment",), agent_id="stays")
    agents.handles[0].kill()
    for _ in range(100):
        if len(hub.agents()) == 1:
            break
        await asyncio.sleep(0.02)
    response = await client.post("/execute", json={"instruction": "x", "tools": ["extract_data"]})
    assert response.status_code == 503 and response.json()["code"] == "NO_AGENT_AVAILABLE"


async def test_a_full_hub_answers_hub_busy_with_retry_after(make_http):
    hub, _, client = await make_http(max_queue=0)
    conn = await raw_agent(hub.url, "single", max_concurrency=1)
    holding = asyncio.create_task(client.post("/execute", json={"instruction": "first", "tools": []}))
    await recv_json(conn)
    response = await client.post("/execute", json={"instruction": "second", "tools": []})
    assert response.status_code == 503 and response.json()["code"] == "HUB_BUSY"
    assert response.headers["retry-after"] == "1"
    holding.cancel()
    await conn.close()


async def test_agent_errors_keep_their_status(make_http, agents):
    hub, _, client = await make_http()

    async def unloaded(instruction: str, tools: list[str]) -> list[AgentMessage]:
        raise AgentError(ErrorCode.MODEL_NOT_LOADED, "Call load_model() before act()")

    await agents.start(hub.url, unloaded)
    response = await client.post("/execute", json={"instruction": "x"})
    assert response.status_code == 500
    assert response.json() == {"success": False, "error": "Call load_model() before act()", "code": "MODEL_NOT_LOADED"}


async def test_a_slow_agent_hits_the_deadline(make_http, agents):
    hub, _, client = await make_http(deadline=0.5)

    async def slow(instruction: str, tools: list[str]) -> list[AgentMessage]:
        await asyncio.sleep(30)
        return []

    await agents.start(hub.url, slow)
    response = await client.post("/execute", json={"instruction": "x"})
    assert response.status_code == 504 and response.json()["code"] == "UPSTREAM_TIMEOUT"


@pytest.mark.parametrize(
    "raw, status, code",
    [("{nope", 400, "INVALID_REQUEST"), ('{"tools": []}', 400, "INVALID_INSTRUCTION"), ("x" * (70 * 1024), 413, "PAYLOAD_TOO_LARGE")],
    ids=["malformed", "no-instruction", "oversized"],
)
async def test_bad_bodies(make_http, agents, raw, status, code):
    hub, _, client = await make_http()
    await agents.start(hub.url)
    response = await client.post("/execute", content=raw)
    assert response.status_code == status and response.json()["code"] == code


async def test_routes(make_http):
    _, _, client = await make_http()
    assert (await client.get("/nope")).status_code == 404
    response = await client.get("/execute")
    assert response.status_code == 405 and response.headers["allow"] == "POST"
    assert (await client.options("/execute")).status_code == 204
    head = await client.head("/health")
    assert head.status_code == 200 and head.content == b""


async def test_a_client_that_leaves_cancels_its_task(make_http):
    hub, _, client = await make_http()
    conn = await raw_agent(hub.url, "watcher")
    request = asyncio.create_task(client.post("/execute", json={"instruction": "long"}))
    task = await recv_json(conn)
    request.cancel()  # the client hangs up
    cancel = await recv_json(conn)
    assert cancel["type"] == "task:cancel" and cancel["data"]["task_id"] == task["data"]["task_id"]
    await conn.close()


async def test_a_lowercase_method_is_not_post(make_http):
    _, _, client = await make_http()
    # httpx upper-cases methods, so the request goes out on a raw socket.
    host, port = client.base_url.host, client.base_url.port
    reader, writer = await asyncio.open_connection(host, port)
    body = b'{"instruction": "x"}'
    writer.write(b"post /execute HTTP/1.1\r\nHost: hub\r\nAuthorization: Bearer " + API_KEY.encode() +
                 b"\r\nContent-Type: application/json\r\nConnection: close\r\nContent-Length: " +
                 str(len(body)).encode() + b"\r\n\r\n" + body)
    answer = await asyncio.wait_for(reader.read(), 10)
    writer.close()
    assert answer.startswith(b"HTTP/1.1 405"), answer[:200]
    assert b'"code":"METHOD_NOT_ALLOWED"' in answer and b"allow: POST" in answer.lower().replace(b"allow: post", b"allow: POST")


async def test_a_tool_name_that_is_not_unicode_is_a_json_400_not_a_500(make_http, agents):
    hub, _, client = await make_http()
    await agents.start(hub.url)
    response = await client.post("/execute", content=b'{"instruction": "x", "tools": ["\\udc00"]}',
                                 headers={"Content-Type": "application/json"})
    assert response.status_code == 400 and response.json()["code"] == "INVALID_REQUEST"
    assert "not valid Unicode" in response.json()["error"]


async def test_the_http_listener_runs_with_the_shared_uvicorn_limits(make_hub):
    from lmstudio_agent.endpoint.uvicorn_limits import KEEP_ALIVE_SECONDS, MAX_HEADER_BYTES

    server = HubHttpServer(HubHttpApp(await make_hub(), api_key=API_KEY))
    await server.start("127.0.0.1", 0)
    try:
        config = server._server.config
        assert config.http.__name__ == "HeaderTimeoutH11Protocol"  # slow request heads are cut off
        assert config.h11_max_incomplete_event_size == MAX_HEADER_BYTES
        assert config.timeout_keep_alive == KEEP_ALIVE_SECONDS and config.access_log is False
    finally:
        await server.stop()
