"""The README's flow on the real embedded model: a hub, an LMStudioAgent on the gateway-model server
(SmolLM2-135M via llama-cpp-python) connected out to it, and a client's POST /execute to the hub."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from lmstudio_hub.http import HubHttpApp, HubHttpServer
from lmstudio_agent.contract import ExecuteOptions
from lmstudio_agent.lmstudio import LMStudioAgent

from .helpers import TOKEN

pytestmark = [pytest.mark.model, pytest.mark.slow]
API_KEY = "embedded-client-key-0123456789"


async def test_execute_through_the_hub_completes_on_the_embedded_model(make_hub, embedded_model):
    hub = await make_hub(ping_interval=5, ping_timeout=5, task_timeout=170, default_deadline=180)
    agent = LMStudioAgent(model_name=embedded_model.model, bridge_url=hub.url, agent_id="home-pc",
                          base_url=embedded_model.base_url, api_key=embedded_model.api_key, bridge_token=TOKEN)
    serving = asyncio.create_task(agent.connect_to_bridge())
    server = HubHttpServer(HubHttpApp(hub, api_key=API_KEY, options=ExecuteOptions(deadline_seconds=180)))
    await server.start("127.0.0.1", 0)
    try:
        for _ in range(1500):
            if hub.agents() or serving.done():
                break
            await asyncio.sleep(0.02)
        if serving.done():
            serving.result()
        (info,) = hub.agents()
        assert info.model == embedded_model.model
        async with httpx.AsyncClient(base_url=server.url, timeout=200) as client:
            response = await client.post(
                "/execute",
                json={"instruction": "Analyze the sentiment of this review: I love this product!",
                      "tools": ["analyze_sentiment"]},
                headers={"Authorization": f"Bearer {API_KEY}"},
            )
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["success"] is True and body["cached"] is False
        final = body["result"][-1]
        assert final["type"] == "result" and isinstance(final.get("content"), str)
        assert hub.stats.completed == 1
    finally:
        serving.cancel()
        await asyncio.gather(serving, return_exceptions=True)
        await server.stop()
        await agent.client.aclose()
