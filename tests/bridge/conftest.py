"""Fixtures for the AI Bridge tests: a real hub on a loopback port, and real agents connecting to it over
real WebSocket connections (see helpers.py for the raw protocol clients)."""

from __future__ import annotations

from typing import Any
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from lmstudio_hub import BridgeHub

from .helpers import TOKEN, Agents, hub_options


@pytest.fixture
async def make_hub() -> AsyncIterator[Callable[..., Awaitable[BridgeHub]]]:
    hubs: list[BridgeHub] = []

    async def make(port: int = 0, **overrides: Any) -> BridgeHub:
        # With identities of its own the hub gets no shared token unless they carry one.
        hub = BridgeHub(None if "identities" in overrides else TOKEN, **hub_options(**overrides))
        await hub.start("127.0.0.1", port)
        hubs.append(hub)
        return hub

    yield make
    for hub in hubs:
        if hub.serving:
            await hub.stop()


@pytest.fixture
async def hub(make_hub) -> BridgeHub:
    return await make_hub()


@pytest.fixture
async def agents() -> AsyncIterator[Agents]:
    pool = Agents()
    yield pool
    await pool.close()
