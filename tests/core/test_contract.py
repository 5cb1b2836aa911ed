"""The shared HTTP contract, framework-free: routing, auth, validation, cache rules, the OpenAPI document."""

import json
from pathlib import Path

import pytest

from lmstudio_agent.endpoint.cache import MemoryCacheStore, cache_key, wants_fresh
from lmstudio_agent.endpoint.contract import ExecuteOptions, ExecuteRequest, authorize, execute, handle_request, start_execution
from lmstudio_agent.errors import AgentError, ErrorCode
from lmstudio_agent.endpoint.openapi import openapi_json
from lmstudio_agent.endpoint.backend import AgentBackend, EndpointSettings
from tests.support.openai_stub import MODEL_ID, json_content
from tests.support.tools import echo_and_email

KEY = "client-key-123"




@pytest.fixture
def backend(openai_stub):
    settings = EndpointSettings(lm_studio_url=openai_stub.base_url, model=MODEL_ID, tool_mode="constrained")
    return AgentBackend(settings, echo_and_email())


async def call(backend, method="POST", path="/execute", body=None, headers=None, cache=None, options=None):
    headers = {"Authorization": f"Bearer {KEY}", **(headers or {})}
    raw = body if isinstance(body, (str, bytes)) or body is None else json.dumps(body)
    return await handle_request(method, path, headers, raw, backend=backend, api_key=KEY, cache=cache,
                                options=options)


async def test_health_is_open(backend):
    response = await handle_request("GET", "/health", {}, None, backend=backend, api_key=KEY)
    assert response.status == 200 and response.body["status"] == "healthy"
    assert isinstance(response.body["timestamp"], int)


@pytest.mark.parametrize("headers,status,code", [
    ({}, 401, "UNAUTHORIZED"),
    ({"Authorization": "Bearer wrong"}, 403, "FORBIDDEN"),
    ({"X-Api-Key": "wrong"}, 403, "FORBIDDEN"),
])
async def test_execute_needs_the_key(backend, headers, status, code):
    response = await handle_request("POST", "/execute", headers, '{"instruction": "x"}', backend=backend, api_key=KEY)
    assert (response.status, response.body["code"], response.body["success"]) == (status, code, False)


async def test_x_api_key_is_accepted(backend, openai_stub):
    openai_stub.enqueue(json_content({"name": "terminate", "arguments": {"message": "ok"}}))
    response = await handle_request("POST", "/execute", {"x-api-key": KEY}, '{"instruction": "x"}',
                                    backend=backend, api_key=KEY)
    assert response.status == 200


async def test_no_configured_key_refuses_everything(backend):
    response = await handle_request("POST", "/execute", {"Authorization": "Bearer "}, "{}", backend=backend, api_key=None)
    assert response.status in (401, 403)


@pytest.mark.parametrize("body,status,code", [
    ("{not json", 400, "INVALID_REQUEST"),
    ("[1, 2]", 400, "INVALID_REQUEST"),
    ("", 400, "INVALID_REQUEST"),
    ({"tools": []}, 400, "INVALID_INSTRUCTION"),
    ({"instruction": "   "}, 400, "INVALID_INSTRUCTION"),
    ({"instruction": "x", "tools": "echo"}, 400, "INVALID_REQUEST"),
    ({"instruction": "x", "surprise": 1}, 400, "INVALID_REQUEST"),
    ({"instruction": "x", "tools": ["echo", "rm_rf"]}, 400, "UNKNOWN_TOOL"),
    ("x" * 70_000, 413, "PAYLOAD_TOO_LARGE"),
])
async def test_bad_bodies_get_clear_codes(backend, openai_stub, body, status, code):
    response = await call(backend, body=body)
    assert (response.status, response.body["code"]) == (status, code)
    assert "Traceback" not in response.json()
    assert openai_stub.chat_requests == []


async def test_missing_instruction_message_matches_the_reference(backend):
    response = await call(backend, body={"tools": []})
    assert response.body["error"] == "Missing instruction"


async def test_routes_and_methods(backend):
    assert (await call(backend, "GET", "/nope")).status == 404
    response = await call(backend, "GET", "/execute")
    assert response.status == 405 and response.headers["Allow"] == "POST"
    assert (await call(backend, "OPTIONS", "/execute")).status == 204


async def test_success_then_cache_hit_then_no_cache(backend, openai_stub):
    cache = MemoryCacheStore()
    openai_stub.default = json_content({"name": "terminate", "arguments": {"message": "cached answer"}})
    first = await call(backend, body={"instruction": "say hi", "tools": ["echo"]}, cache=cache)
    assert first.status == 200 and first.body["cached"] is False
    assert first.body["result"][-1] == {"type": "result", "content": "cached answer"}
    second = await call(backend, body={"instruction": "  say   hi ", "tools": ["echo"]}, cache=cache)
    assert second.body == {**first.body, "cached": True}
    assert len(openai_stub.chat_requests) == 1
    fresh = await call(backend, body={"instruction": "say hi", "tools": ["echo"]}, cache=cache,
                       headers={"Cache-Control": "no-cache"})
    assert fresh.body["cached"] is False and len(openai_stub.chat_requests) == 2


async def test_side_effect_tools_are_never_cached(backend, openai_stub):
    cache = MemoryCacheStore()
    openai_stub.default = json_content({"name": "terminate", "arguments": {"message": "sent"}})
    for _ in range(2):
        response = await call(backend, body={"instruction": "mail bob", "tools": ["send_email"]}, cache=cache)
        assert response.body["cached"] is False
    assert len(openai_stub.chat_requests) == 2
    assert cache._items == {}


async def test_upstream_failures_map_to_codes(backend, openai_stub, dead_upstream_url):
    openai_stub.enqueue(json_content({"name": "terminate", "arguments": {"message": "x"}}, delay=3))
    slow = await call(backend, body={"instruction": "x"}, options=ExecuteOptions(deadline_seconds=0.5))
    assert (slow.status, slow.body["code"]) == (504, "UPSTREAM_TIMEOUT")
    down = AgentBackend(EndpointSettings(lm_studio_url=dead_upstream_url, model=MODEL_ID, tool_mode="constrained"))
    response = await call(down, body={"instruction": "x"})
    assert (response.status, response.body["code"]) == (500, "CONNECTION_FAILED")


def test_cache_key_normalises_instruction_and_tool_order():
    a = cache_key(instruction="Hello  world", tools=["b", "a"], model="m", scope="s")
    assert a == cache_key(instruction=" Hello world ", tools=["a", "b", "a"], model="m", scope="s")
    assert a != cache_key(instruction="Hello world", tools=["a", "b"], model="other", scope="s")
    assert a != cache_key(instruction="Hello world", tools=["a", "b"], model="m", scope="other deployment")
    assert wants_fresh({"cache-control": "max-age=0, no-cache"}) and not wants_fresh({})


def test_committed_openapi_document_is_current():
    committed = Path(__file__).resolve().parents[2] / "core" / "openapi.json"
    assert committed.read_text() == openapi_json(), "core/openapi.json is stale: run `lmstudio-agent openapi -o core/openapi.json`"


async def test_a_key_source_is_read_only_for_keyed_routes_and_its_failure_keeps_its_code(backend):
    reads = []

    def key() -> str:
        reads.append(1)
        raise AgentError(ErrorCode.INTERNAL_ERROR, "The endpoint is misconfigured: a secret could not be read")

    health = await handle_request("GET", "/health", {}, None, backend=backend, api_key=key)
    assert health.status == 200 and reads == []
    refused = await handle_request("POST", "/execute", {"Authorization": f"Bearer {KEY}"}, '{"instruction": "x"}',
                                   backend=backend, api_key=key)
    assert refused.status == 500 and "misconfigured" in refused.body["error"] and reads == [1]


async def test_a_caller_the_platform_authenticated_needs_no_key(backend, openai_stub):
    openai_stub.enqueue(json_content({"tool": "echo", "arguments": {"text": "hi"}}))
    response = await handle_request("POST", "/execute", {}, json.dumps({"instruction": "Echo hi", "tools": ["echo"]}),
                                    backend=backend, api_key=None, authenticated=True)
    assert response.status == 200, response.body
    assert (await handle_request("POST", "/execute", {}, "{}", backend=backend, api_key=None)).status == 401


# ---------------------------------------------------------------- the rules where they live (issue 21, item 9)


@pytest.mark.parametrize("presented", [
    KEY + "x", KEY[:-1], KEY.upper(), " " + KEY + "-", "", "Bearer " + KEY, KEY + "\x00",
])
def test_a_key_is_compared_whole_and_exactly(presented):
    for headers in ({"Authorization": f"Bearer {presented}"}, {"X-Api-Key": presented}):
        refused = authorize(headers, KEY)
        assert refused is not None and refused.status in (401, 403), (headers, refused)
    assert authorize({"Authorization": f"Bearer {KEY}"}, KEY) is None
    assert authorize({"X-Api-Key": KEY}, KEY) is None
    assert authorize({"authorization": f"bearer   {KEY} "}, KEY) is None  # the scheme is case-insensitive


def test_no_configured_key_matches_no_key():
    for expected in (None, ""):
        assert authorize({"Authorization": "Bearer "}, expected).status == 401
        assert authorize({"X-Api-Key": "anything"}, expected).status == 403


async def test_a_json_answer_is_the_executions_events_collected_and_a_run_without_an_answer_is_not_cached(
        backend, openai_stub):
    cache = MemoryCacheStore()
    openai_stub.enqueue(json_content({"tool": "echo", "arguments": {"text": "hi"}}),
                        json_content({"tool": "terminate", "arguments": {"message": "It said hi."}}))
    request = ExecuteRequest(instruction="Echo hi", tools=["echo"])
    run = await start_execution(request, backend, cache=cache, live=False)
    events = [event async for event in run.events()]
    assert run.error is None and not run.cached and len(cache._items) == 1
    replay = await start_execution(request, backend, cache=cache)
    assert replay.cached and [e async for e in replay.events()] == events  # the entry replays the same events
    answer = await execute(request, backend, cache=cache)
    assert answer.cached and answer.result == run.transcript()
    # A run that ends without an answer is never cached, on the JSON path as on the stream.
    openai_stub.enqueue(*[json_content({"tool": "nonexistent", "arguments": {}})] * 6)
    fresh = await start_execution(ExecuteRequest(instruction="Do the impossible", tools=["echo"]), backend, cache=cache)
    _ = [e async for e in fresh.events()]
    assert fresh.error is not None and fresh.error.code is ErrorCode.NO_ANSWER and len(cache._items) == 1


async def test_handle_request_is_the_routers_json_only_view(backend, openai_stub):
    """The Lambda's direct invoke: ``POST /execute`` answered as JSON, whatever the body or ``Accept`` ask, and
    none of the router's other routes."""
    openai_stub.enqueue(json_content({"tool": "terminate", "arguments": {"message": "hi"}}))
    response = await call(backend, body={"instruction": "Say hi", "stream": True}, headers={"Accept": "text/event-stream"})
    assert response.status == 200 and response.body["success"] is True and response.body["result"]
    assert (await call(backend, method="GET", path="/v1/models")).status == 404
    assert (await call(backend, method="GET", path="/runs/run_x")).status == 404
