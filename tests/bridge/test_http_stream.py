"""The hub's streamed execute against agents that stream (task:event) and agents that do not, and the
heartbeat on an idle stream, over real loopback HTTP and WebSocket."""

from __future__ import annotations

import asyncio
import json

import httpx

from lmstudio_agent.endpoint.contract import ExecuteOptions
from lmstudio_agent.agent.events import RunEvent
from lmstudio_agent.agent.messages import AgentMessage
from lmstudio_hub.http import HubHttpApp, HubHttpServer

from .helpers import MODEL

API_KEY = "client-key-for-the-hub"
HEADERS = {"Authorization": f"Bearer {API_KEY}", "Accept": "text/event-stream"}


async def start_http(hub, **app_options) -> HubHttpServer:
    server = HubHttpServer(HubHttpApp(hub, api_key=API_KEY, options=ExecuteOptions(deadline_seconds=5.0), **app_options))
    await server.start("127.0.0.1", 0)
    return server


async def read(server: HubHttpServer, body: dict) -> tuple[list, list[str]]:
    chunks, comments = [], []
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as client:
        async with client.stream("POST", "/execute", json=body, headers=HEADERS) as response:
            assert response.status_code == 200
            async for line in response.aiter_lines():
                if line.startswith("data: "):
                    chunks.append(line[6:] if line[6:] == "[DONE]" else json.loads(line[6:]))
                elif line.startswith(":"):
                    comments.append(line)
    return chunks, comments


async def test_an_agent_without_task_events_still_streams_its_transcript(make_hub, agents):
    hub = await make_hub()
    server = await start_http(hub)

    async def runner(instruction: str, tools: list[str]) -> list[AgentMessage]:
        return [AgentMessage(type="action", tool="extract_data", args={"text": instruction}),
                AgentMessage(type="result", tool="extract_data", content="{}"),
                AgentMessage(type="result", content="nothing to extract")]

    await agents.start(hub.url, runner)  # no streamer: an agent from before task:event
    chunks, _ = await read(server, {"instruction": "x", "model": MODEL})
    types = [c["type"] for c in chunks[:-1]]
    assert types == ["start", "start-step", "tool-input-available", "tool-output-available", "finish-step",
                     "start-step", "text-start", "text-delta", "text-end", "finish-step", "finish"]
    assert chunks[-1] == "[DONE]"
    await server.stop()


async def test_task_events_reach_the_client_as_they_come_and_idle_gaps_get_heartbeats(make_hub, agents):
    hub = await make_hub()
    server = await start_http(hub, heartbeat_seconds=0.1)
    release = asyncio.Event()

    async def runner(instruction: str, tools: list[str]) -> list[AgentMessage]:
        raise AssertionError("a streamed task goes to the streamer")

    async def streamer(instruction: str, tools: list[str]):
        yield RunEvent.step_start(0)
        yield RunEvent.text("Hello")
        await release.wait()  # the run pauses: the client has the first events already
        yield RunEvent.text(", world")
        yield RunEvent.of(AgentMessage(type="result", content="Hello, world"))

    await agents.start(hub.url, runner, streamer=streamer)
    reading = asyncio.ensure_future(read(server, {"instruction": "x", "model": MODEL}))
    await asyncio.sleep(0.5)
    assert not reading.done()
    release.set()
    chunks, comments = await asyncio.wait_for(reading, 5)
    assert [c["delta"] for c in chunks if isinstance(c, dict) and c["type"] == "text-delta"] == ["Hello", ", world"]
    assert len(comments) >= 2 and set(comments) == {": keep-alive"}
    await server.stop()
