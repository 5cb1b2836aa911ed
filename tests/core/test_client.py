"""ChatClient against a real loopback server: retries, Retry-After, deadlines, error codes, wire format."""

import time

import pytest

from lmstudio_agent.model.client import ChatClient
from lmstudio_agent.deadline import Deadline
from lmstudio_agent.errors import AgentError, ErrorCode
from tests.support.openai_stub import ScriptedOpenAIServer, garbage, http_error, text, tool_call


async def test_sends_bearer_key_and_empty_content_not_null(openai_stub):
    openai_stub.enqueue(text("hi"))
    client = ChatClient(openai_stub.base_url, "sk-secret", "m")
    reply = await client.chat([{"role": "user", "content": "x"}, {"role": "assistant", "content": None}])
    await client.aclose()
    assert reply.content == "hi"
    sent = openai_stub.requests[-1]
    assert sent["headers"]["Authorization"] == "Bearer sk-secret"
    assert sent["body"]["messages"][1]["content"] == ""
    assert "sk-secret" not in repr(client)


async def test_tool_choice_only_as_string(openai_stub):
    client = ChatClient(openai_stub.base_url)
    with pytest.raises(ValueError):
        await client.chat([{"role": "user", "content": "x"}], tools=[{"type": "function"}],
                          tool_choice={"type": "function"})  # type: ignore[arg-type]
    assert openai_stub.requests == []


async def test_native_tool_calls_are_decoded(openai_stub):
    openai_stub.enqueue(tool_call("get_time", {"tz": "CET"}))
    reply = await ChatClient(openai_stub.base_url).chat([{"role": "user", "content": "x"}])
    assert [(c.name, c.arguments) for c in reply.tool_calls] == [("get_time", {"tz": "CET"})]


async def test_retries_429_honouring_retry_after(openai_stub):
    openai_stub.enqueue(http_error(429, "slow down", retry_after=0.3), text("ok"))
    client = ChatClient(openai_stub.base_url, backoff_seconds=0.01)
    started = time.monotonic()
    reply = await client.chat([{"role": "user", "content": "x"}])
    assert reply.content == "ok"
    assert len(openai_stub.chat_requests) == 2
    assert time.monotonic() - started >= 0.3  # it waited as told, not its own 10 ms backoff


async def test_retries_5xx_then_gives_up_with_upstream_error(openai_stub):
    openai_stub.enqueue(http_error(503), http_error(502), http_error(500, "model crashed"))
    client = ChatClient(openai_stub.base_url, max_retries=2, backoff_seconds=0.01)
    with pytest.raises(AgentError) as info:
        await client.chat([{"role": "user", "content": "x"}])
    assert info.value.code is ErrorCode.UPSTREAM_ERROR
    assert "model crashed" in info.value.message
    assert len(openai_stub.chat_requests) == 3


async def test_unreachable_server_is_connection_failed(dead_upstream_url):
    client = ChatClient(dead_upstream_url, max_retries=1, backoff_seconds=0.01)
    with pytest.raises(AgentError) as info:
        await client.chat([{"role": "user", "content": "x"}])
    assert info.value.code is ErrorCode.CONNECTION_FAILED
    assert isinstance(info.value, RuntimeError)


async def test_slow_server_hits_the_deadline(openai_stub):
    openai_stub.enqueue(text("late", delay=3.0))
    client = ChatClient(openai_stub.base_url, timeout=30)
    with pytest.raises(AgentError) as info:
        await client.chat([{"role": "user", "content": "x"}], deadline=Deadline(0.5))
    assert info.value.code is ErrorCode.UPSTREAM_TIMEOUT


async def test_garbage_body_is_upstream_error(openai_stub):
    openai_stub.enqueue(garbage())
    with pytest.raises(AgentError) as info:
        await ChatClient(openai_stub.base_url).chat([{"role": "user", "content": "x"}])
    assert info.value.code is ErrorCode.UPSTREAM_ERROR


async def test_refused_token_never_echoed():
    with ScriptedOpenAIServer(token="right") as server:
        client = ChatClient(server.base_url, "sk-wrong-token", max_retries=0)
        with pytest.raises(AgentError) as info:
            await client.chat([{"role": "user", "content": "x"}])
    assert info.value.code is ErrorCode.UPSTREAM_ERROR
    assert "sk-wrong-token" not in str(info.value)


async def test_model_info_reads_lm_studio_capabilities():
    with ScriptedOpenAIServer(capabilities=["tool_use"]) as server:
        info = await ChatClient(server.base_url, model="scripted-model").model_info()
    assert info is not None and info["capabilities"] == ["tool_use"]
