"""The bridge hub as an endpoint driver for the shared contract scenarios (tests/endpoints/).

Everything is real and on loopback: the hub's WebSocket server and its HTTP API (uvicorn), and agents that
connect out to it over WebSocket and run the core agent loop (``service.AgentBackend``, the same backend the
Lambda and the Worker use) against the scripted OpenAI-protocol upstream. The hub, its HTTP listener and its
agents share one event loop in a background thread; ``request`` is a plain HTTP call from the test's thread.

The home machine runs one agent per model it serves: the configured model and ``another-model`` (one LM
Studio serving two models), since the hub sends a request only to an agent that has its model.
"""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any, Optional
from collections.abc import Mapping

import httpx
from pydantic import SecretStr

from lmstudio_agent.bridge import serve_agent
from lmstudio_hub import BridgeHub
from lmstudio_hub.http import HubHttpApp, HubHttpServer
from lmstudio_agent.endpoint.cache import MemoryCacheStore
from lmstudio_agent.endpoint.contract import ExecuteOptions
from lmstudio_agent.deadline import Deadline
from lmstudio_agent.agent.messages import AgentMessage
from lmstudio_agent.model.modes import ToolMode
from lmstudio_agent.endpoint.backend import AgentBackend, EndpointSettings
from tests.endpoints.drivers.base import DriverResponse, EndpointConfig, RequestBody, SSEReader, StreamResult

AGENT_TOKEN = "hub-driver-agent-token-0123456789"
EXTRA_MODELS = ("another-model",)


class HubDriver:
    name = "hub"
    supports_runs = True  # in the hub's memory, run as tasks of its event loop

    def __init__(self, config: EndpointConfig) -> None:
        self.config = config
        self.cache = MemoryCacheStore()
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="hub-driver", daemon=True)
        self.thread.start()
        self.backends: list[AgentBackend] = []
        self.serving: list[asyncio.Task[None]] = []
        self._run(self._start())
        self.client = httpx.Client(base_url=self.server.url, timeout=config.deadline_seconds + 15)

    def _run(self, coro: Any, timeout: float = 30.0) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    async def _start(self) -> None:
        config = self.config
        self.hub = BridgeHub(AGENT_TOKEN, default_model=config.model, default_deadline=config.deadline_seconds)
        await self.hub.start("127.0.0.1", 0)
        options = ExecuteOptions(deadline_seconds=config.deadline_seconds, cache_ttl_seconds=config.cache_ttl_seconds)
        self.server = HubHttpServer(HubHttpApp(self.hub, api_key=config.client_key, cache=self.cache, options=options))
        await self.server.start("127.0.0.1", 0)
        for i, model in enumerate(dict.fromkeys((config.model, *EXTRA_MODELS))):
            await self._start_agent(f"home-agent-{i}", model)
        while len(self.hub.agents()) < len(self.serving):
            for task in self.serving:
                if task.done():
                    task.result()
            await asyncio.sleep(0.01)

    async def _start_agent(self, agent_id: str, model: str) -> None:
        backend, serving = home_agent(self.config, self.hub.url, agent_id, model, AGENT_TOKEN)
        self.backends.append(backend)
        self.serving.append(serving)

    def request(
        self, method: str, path: str, *, headers: Optional[Mapping[str, str]] = None, body: RequestBody = None
    ) -> DriverResponse:
        content = body.encode() if isinstance(body, str) else body
        pairs = list(headers.items()) if isinstance(headers, Mapping) else list(headers or [])
        response = self.client.request(method, path, headers=pairs, content=content)
        return DriverResponse.from_parts(response.status_code, dict(response.headers), response.text)

    def stream(
        self, method: str, path: str, *, headers: Optional[Mapping[str, str]] = None, body: RequestBody = None,
        stop_after: Optional[int] = None,
    ) -> StreamResult:
        """A request whose answer is read as it arrives over the socket (``stop_after``: hang up after that
        many events)."""
        content = body.encode() if isinstance(body, str) else body
        with self.client.stream(method, path, headers=dict(headers or {}), content=content) as response:
            result = StreamResult(response.status_code, {k.lower(): v for k, v in response.headers.items()})
            reader = SSEReader(result, time.monotonic)
            for piece in response.iter_text():
                reader.feed(piece)
                if stop_after is not None and len(result.events) >= stop_after:
                    break
        return result

    def cache_entries(self) -> int:
        return self._run(self._count())

    async def _count(self) -> int:
        return len(self.cache._items)  # MemoryCacheStore keeps its entries in _items

    def close(self) -> None:
        self.client.close()
        self._run(self._stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()

    async def _stop(self) -> None:
        for task in self.serving:
            task.cancel()
        await asyncio.gather(*self.serving, return_exceptions=True)
        await self.server.stop()
        await self.hub.stop()
        for backend in self.backends:
            await backend.aclose()


def home_agent(config: EndpointConfig, url: str, agent_id: str, model: str, token: str
               ) -> tuple[AgentBackend, asyncio.Future[None]]:
    """A home agent serving ``model`` through the core agent loop (``AgentBackend``, as the Lambda and the
    Worker run it) on the scripted upstream, connected out to the hub at ``url``; call on the running loop.

    Args:
        config: The deployment's settings (upstream, token, tool mode, allow-list, deadline).
        url: The hub's WebSocket URL.
        agent_id: The agent's id.
        model: The model it serves.
        token: Its token.
    """
    settings = EndpointSettings(
        lm_studio_url=config.upstream_url,
        lm_studio_token=SecretStr(config.upstream_token) if config.upstream_token else None,
        model=model,
        tool_mode=ToolMode(config.tool_mode),
        deadline_seconds=config.deadline_seconds,
        cache_ttl_seconds=max(60, config.cache_ttl_seconds),
        allowed_tools=config.allowed_tools,
    )
    backend = AgentBackend(settings)

    async def runner(instruction: str, tools: list[str],
                     documents: Optional[dict[str, str]] = None) -> list[AgentMessage]:
        return await backend.run(instruction, backend.select_tools(tools), model, Deadline(config.deadline_seconds),
                                 documents=documents)

    def streamer(instruction: str, tools: list[str], documents: Optional[dict[str, str]] = None):
        return backend.stream(instruction, backend.select_tools(tools), model, Deadline(config.deadline_seconds),
                              documents=documents)

    serving = asyncio.ensure_future(
        serve_agent(
            runner, bridge_url=url, agent_id=agent_id, token=token, model=model,
            capabilities=["llm", "tool-use"], registry=backend.registry, max_concurrency=4, streamer=streamer,
            forwarder=backend.forward_chat,
        )
    )
    return backend, serving


def make_driver(config: EndpointConfig) -> HubDriver:
    return HubDriver(config)
