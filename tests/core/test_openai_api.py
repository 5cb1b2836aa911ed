"""The OpenAI-compatible routes through core's router, below any adapter (the adapters' scenarios are in
tests/endpoints/test_openai_scenarios.py): the stream's framing while keep-alive comments go out."""

from __future__ import annotations

import json

from lmstudio_agent.endpoint.router import route
from lmstudio_agent.endpoint.backend import AgentBackend, EndpointSettings
from lmstudio_agent.endpoint.streaming import StreamResponse
from tests.support.openai_stub import MODEL_ID, streamed_text

KEY = "client-key-0123456789"


async def read_events(response: StreamResponse) -> tuple[list[object], int]:
    """The stream's events (``[DONE]`` kept as text) and how many keep-alive comments came between them."""
    text = "".join([piece.decode() async for piece in response.body])
    events, comments = [], 0
    for block in text.split("\n\n"):
        lines = [line for line in block.split("\n") if line]
        comments += sum(line.startswith(":") for line in lines)
        data = [line[6:] for line in lines if line.startswith("data: ")]
        assert all(line.startswith((":", "data: ")) for line in lines), block
        if data:
            payload = "\n".join(data)
            events.append(payload if payload == "[DONE]" else json.loads(payload))
    return events, comments


async def test_a_passed_through_stream_stays_whole_events_between_keep_alives(openai_stub):
    backend = AgentBackend(EndpointSettings(lm_studio_url=openai_stub.base_url, model=MODEL_ID, tool_mode="native"))
    openai_stub.enqueue(streamed_text("one two three four", chunk_delay=0.12))
    body = json.dumps({"model": MODEL_ID, "messages": [{"role": "user", "content": "count"}], "stream": True})
    try:
        response = await route("POST", "/v1/chat/completions", {"Authorization": f"Bearer {KEY}"}, body,
                               backend=backend, api_key=KEY, heartbeat_seconds=0.05)
        assert isinstance(response, StreamResponse)
        assert "x-vercel-ai-ui-message-stream" not in response.all_headers()
        events, comments = await read_events(response)
    finally:
        await backend.aclose()
    assert comments > 0  # the model paused longer than the heartbeat: keep-alives went out meanwhile
    assert events[-1] == "[DONE]"
    text = "".join(e["choices"][0]["delta"].get("content") or "" for e in events[:-1]
                   if isinstance(e, dict) and e.get("choices"))
    assert text == "one two three four"
