"""Guards against the bugs a refactor makes easy (issue 21): each test here failed when its bug was put back.

- a streamed completion with no overall deadline (a server that sends a byte now and then keeps every
  per-read timeout happy);
- an unbounded wait for the hub's answer to ``agent:register`` (a hub that accepts the socket and never
  answers);
- a streamed run that ended without an answer being cached.
"""

from __future__ import annotations

import asyncio
import json
import time

import pytest
from websockets.asyncio.server import serve

from lmstudio_agent.bridge import serve_agent
from lmstudio_agent.endpoint.cache import MemoryCacheStore
from lmstudio_agent.model.client import ChatClient
from lmstudio_agent.deadline import Deadline
from lmstudio_agent.errors import AgentError, BridgeConnectionError, ErrorCode
from lmstudio_agent.endpoint.backend import AgentBackend, EndpointSettings
from lmstudio_agent.endpoint.streaming import StreamResponse, handle_execute_stream
from lmstudio_agent.agent.tools import ToolRegistry
from tests.support.openai_stub import MODEL_ID, json_content, text


async def _trickle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """An OpenAI-compatible stream that never ends: an SSE comment every 0.2 s."""
    await reader.readuntil(b"\r\n\r\n")
    writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n")
    try:
        while True:
            chunk = b": still here\n\n"
            writer.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
            await writer.drain()
            await asyncio.sleep(0.2)
    except (ConnectionError, asyncio.CancelledError):
        pass
    finally:
        writer.close()


async def test_a_streamed_completion_ends_by_the_deadline_however_the_server_trickles():
    server = await asyncio.start_server(_trickle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    started = time.monotonic()
    try:
        async with ChatClient(f"http://127.0.0.1:{port}/v1", "k", "m", timeout=1.0) as client:
            async def consume() -> None:
                async for _ in client.chat_stream([{"role": "user", "content": "hi"}], deadline=Deadline(1.5)):
                    pass
            with pytest.raises(AgentError) as info:
                await asyncio.wait_for(consume(), 10)  # the bug: this hangs until the guard's 10 s
    finally:
        server.close()
    assert info.value.code is ErrorCode.UPSTREAM_TIMEOUT and "deadline" in info.value.message
    assert time.monotonic() - started < 5


async def test_an_agent_does_not_wait_forever_for_the_hubs_answer_to_register():
    async def silent(connection) -> None:
        async for _ in connection:  # accepts the socket and reads agent:register, never answers it
            pass

    async with serve(silent, "127.0.0.1", 0) as server:
        port = server.sockets[0].getsockname()[1]
        started = time.monotonic()
        with pytest.raises(BridgeConnectionError) as info:
            await asyncio.wait_for(serve_agent(lambda *a: [], bridge_url=f"ws://127.0.0.1:{port}", agent_id="a",
                                               token="t", model="m", open_timeout=0.5), 10)
    assert "agent:register" in info.value.message and time.monotonic() - started < 5


def _registry() -> ToolRegistry:
    registry = ToolRegistry()

    @registry.tool
    def echo(text: str) -> str:
        """Echo text back.

        Args:
            text: The text.
        """
        return text

    return registry


async def _stream(backend: AgentBackend, cache: MemoryCacheStore, instruction: str) -> list[dict]:
    body = json.dumps({"instruction": instruction, "tools": ["echo"], "stream": True})
    response = await handle_execute_stream(body, {}, backend, cache=cache)
    assert isinstance(response, StreamResponse)
    raw = b"".join([chunk async for chunk in response.body]).decode()
    return [json.loads(line[6:]) for line in raw.splitlines() if line.startswith("data: {")]


async def test_a_streamed_run_without_an_answer_is_never_cached(openai_stub):
    backend = AgentBackend(EndpointSettings(lm_studio_url=openai_stub.base_url, model=MODEL_ID, tool_mode="native",
                                            max_rounds=2), _registry())
    cache = MemoryCacheStore()
    openai_stub.enqueue(text('{"tool": "echo", "argu'), text('{"tool": "echo", "argu'))  # never words, never a call
    chunks = await _stream(backend, cache, "say hi")
    assert chunks[-1]["type"] == "finish" and chunks[-1]["messageMetadata"]["code"] == ErrorCode.NO_ANSWER.value
    assert cache._items == {}
    # the control: a run that answers is cached, so the assertion above can fail
    openai_stub.enqueue(json_content({"name": "terminate", "arguments": {"message": "hi"}}))
    chunks = await _stream(backend, cache, "say hello")
    assert chunks[-1]["messageMetadata"]["success"] is True and len(cache._items) == 1
