"""Schemathesis against the hub's HTTP API, driven by the committed contract (core/openapi.json).

Positive and negative cases for every operation, over real loopback HTTP to the hub (uvicorn), with a real
agent connected over WebSocket: no 5xx, every status, content type and body as the document says. Bounded
(``MAX_EXAMPLES`` per operation) to keep it to seconds.
"""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from lmstudio_agent.bridge import serve_agent
from lmstudio_agent.cache import MemoryCacheStore
from lmstudio_agent.contract import ExecuteOptions
from lmstudio_hub import BridgeHub
from lmstudio_hub.http import HubHttpApp, HubHttpServer

from .helpers import MODEL, TOKEN, TOOLS, echo

OPENAPI = Path(__file__).resolve().parents[2] / "core" / "openapi.json"
API_KEY = "schemathesis-client-key-0123456789"
MAX_EXAMPLES = 60


class _HubInThread:
    """A hub, its HTTP API and one echo agent on their own event loop, for a synchronous test."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True, name="schemathesis-hub")
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self.loop).result(30)

    async def _start(self) -> None:
        self.hub = BridgeHub(TOKEN, default_model=MODEL, default_deadline=5)
        await self.hub.start("127.0.0.1", 0)
        app = HubHttpApp(self.hub, api_key=API_KEY, cache=MemoryCacheStore(), options=ExecuteOptions(deadline_seconds=5))
        self.server = HubHttpServer(app)
        await self.server.start("127.0.0.1", 0)
        self.agent = asyncio.ensure_future(
            serve_agent(echo, bridge_url=self.hub.url, agent_id="echo", token=TOKEN, model=MODEL, tools=TOOLS,
                        max_concurrency=8)
        )
        while not self.hub.agents():
            await asyncio.sleep(0.01)

    def close(self) -> None:
        async def stop() -> None:
            self.agent.cancel()
            await asyncio.gather(self.agent, return_exceptions=True)
            await self.server.stop()
            await self.hub.stop()

        asyncio.run_coroutine_threadsafe(stop(), self.loop).result(30)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


@pytest.fixture(scope="module")
def hub_api():
    running = _HubInThread()
    yield running
    running.close()


@pytest.fixture
def api_schema(hub_api):
    schema = schemathesis.openapi.from_path(str(OPENAPI))
    schema.config.update(base_url=hub_api.server.url, headers={"Authorization": f"Bearer {API_KEY}"})
    return schema


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(max_examples=MAX_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
def test_the_hub_conforms_to_the_contract(case):
    case.call_and_validate(timeout=15)
