"""The README's flow on the real embedded model: a hub, an LMStudioAgent on the gateway-model server
(SmolLM2-135M via llama-cpp-python) connected out to it, and a client's POST /execute to the hub (and the
openai SDK on its /v1, passed through the bridge to the agent's model server)."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest

from lmstudio_hub.http import HubHttpApp, HubHttpServer
from lmstudio_agent.endpoint.contract import ExecuteOptions
from lmstudio_agent.lmstudio import LMStudioAgent

from tests.support.model_runs import assert_sentiment_run

from .helpers import TOKEN

pytestmark = [pytest.mark.model, pytest.mark.slow]
API_KEY = "embedded-client-key-0123456789"


async def test_execute_through_the_hub_completes_on_the_embedded_model(make_hub, embedded_model):
    hub = await make_hub(ping_interval=5, ping_timeout=5, task_timeout=170, default_deadline=180)
    agent = LMStudioAgent(model_name=embedded_model.model, bridge_url=hub.url, agent_id="home-pc",
                          base_url=embedded_model.base_url, api_key=embedded_model.api_key, bridge_token=TOKEN,
                          max_rounds=2)  # a tool round, then the answer: bounded time on a busy CPU
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
        # The right tool ran on the agent, found the right label, and the answer says it in words.
        assert_sentiment_run(body["result"], "positive")
        assert hub.stats.completed == 1

        # The same through the stream (the playground's path): the agent streams the model's text
        # (llama-cpp-python's own SSE) as task:event frames, and the hub passes them on as they come.
        chunks = []
        async with httpx.AsyncClient(base_url=server.url, timeout=200) as client:
            async with client.stream("POST", "/execute", headers={"Authorization": f"Bearer {API_KEY}",
                                                                  "Accept": "text/event-stream",
                                                                  "Cache-Control": "no-cache"},
                                     json={"instruction": "Say hello to the user in one short sentence.",
                                           "tools": []}) as streamed:
                assert streamed.status_code == 200
                assert streamed.headers["x-vercel-ai-ui-message-stream"] == "v1"
                async for line in streamed.aiter_lines():
                    if line.startswith("data: "):
                        chunks.append(line[6:])
        assert chunks[-1] == "[DONE]"
        kinds = [json.loads(c)["type"] for c in chunks[:-1]]
        assert kinds[0] == "start" and kinds[-1] == "finish" and "start-step" in kinds
        assert json.loads(chunks[-2])["messageMetadata"]["success"] is True

        # The official openai SDK on the hub's OpenAI face: the agent's own model, passed through the bridge
        # (chat:forward) to the model server at home, plain and streamed.
        from openai import AsyncOpenAI

        sdk = AsyncOpenAI(base_url=f"{server.url}/v1", api_key=API_KEY, max_retries=0, timeout=200)
        assert [m.id for m in (await sdk.models.list()).data] == ["agent", embedded_model.model]
        ask = [{"role": "user", "content": "Say hello in one short sentence."}]
        plain = await sdk.chat.completions.create(model=embedded_model.model, messages=ask, max_tokens=16)
        assert plain.choices[0].message.content.strip()
        streamed_text = ""
        async for chunk in await sdk.chat.completions.create(model=embedded_model.model, messages=ask,
                                                             max_tokens=16, stream=True):
            streamed_text += (chunk.choices[0].delta.content or "") if chunk.choices else ""
        assert streamed_text.strip()
        await sdk.close()
    finally:
        serving.cancel()
        await asyncio.gather(serving, return_exceptions=True)
        await server.stop()
        await agent.client.aclose()
