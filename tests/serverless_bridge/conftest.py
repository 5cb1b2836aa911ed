"""Fixtures of the serverless bridge tests: each serverless hub (the Worker's Durable Objects, API Gateway
WebSockets on Lambda) with its stand-in front on loopback, and real agents (``BridgeAgent``, the client
``connect_to_bridge`` and ``lmstudio-agent bridge agent`` use) connecting to it over real sockets."""

from __future__ import annotations

from typing import Any
from collections.abc import AsyncIterator

import pytest

from tests.bridge.helpers import Agents

CLIENT_KEY = "client-key-for-serverless-bridge"
AGENT_COUNT = 10
TOOLS = ("extract_data", "analyze_sentiment")


def token_of(agent_id: str) -> str:
    return f"token-of-{agent_id}-0123456789"


def agents_text(count: int = AGENT_COUNT) -> str:
    """The identity list (BRIDGE_AGENTS): agent-1..agent-N with any tool, and 'limited' with one tool."""
    lines = [f"agent-{n}: {token_of(f'agent-{n}')} *" for n in range(1, count + 1)]
    lines.append(f"limited: {token_of('limited')} extract_data")
    return "\n".join(lines)


AUTH = {"Authorization": f"Bearer {CLIENT_KEY}"}


async def make_hub(kind: str, **options: Any) -> Any:
    if kind == "cloudflare":
        from .cloudflare_hub import CloudflareHub

        return await CloudflareHub(agents_text(), CLIENT_KEY, **options).start()
    from .aws_hub import AwsHub

    return await AwsHub(agents_text(), CLIENT_KEY, **options).start()


@pytest.fixture(params=["cloudflare", "aws"])
async def serverless_hub(request: pytest.FixtureRequest) -> AsyncIterator[Any]:
    hub = await make_hub(request.param)
    try:
        yield hub
    finally:
        await hub.stop()


@pytest.fixture
async def agents() -> AsyncIterator[Agents]:
    pool = Agents()
    yield pool
    await pool.close()
