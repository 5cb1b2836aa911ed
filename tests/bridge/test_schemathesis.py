"""Schemathesis against the hub's HTTP API, driven by the committed contract (core/openapi.json).

The ``schemathesis run`` CLI with every check, positive and negative data, over real loopback HTTP to the
hub (uvicorn), with a real agent connected over WebSocket: no 5xx, every status, content type and body as
the document says. Bounded (``MAX_EXAMPLES`` per operation, a fixed seed) to keep it to seconds.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from lmstudio_agent.bridge import serve_agent
from lmstudio_agent.endpoint.cache import MemoryCacheStore
from lmstudio_agent.endpoint.contract import ExecuteOptions
from lmstudio_hub import BridgeHub
from lmstudio_hub.http import HubHttpApp, HubHttpServer

from .helpers import MODEL, TOKEN, TOOLS, echo

OPENAPI = Path(__file__).resolve().parents[2] / "core" / "openapi.json"
CONFIG = Path(__file__).resolve().parent / "schemathesis.toml"  # why two statuses are contract answers here
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


def test_the_hub_conforms_to_the_contract(hub_api, tmp_path):
    """``schemathesis run`` (its CLI, every check, positive and negative data, every phase) against the hub."""
    command = [
        sys.executable, "-m", "schemathesis.cli", "--config-file", str(CONFIG), "run", str(OPENAPI),
        "--url", hub_api.server.url, "--exclude-checks", "positive_data_acceptance,use_after_free",
        "--header", f"Authorization: Bearer {API_KEY}", "--checks", "all", "--mode", "all",
        "--max-examples", str(MAX_EXAMPLES), "--request-timeout", "15", "--seed", "1",
        "--generation-database", "none", "--no-color",
    ]
    run = subprocess.run(command, capture_output=True, text=True, timeout=240, cwd=tmp_path)
    report = run.stdout + run.stderr
    assert run.returncode == 0, report[-6000:]
    assert "No issues found" in report or "passed" in report, report[-3000:]
    assert API_KEY not in report.replace(f"Bearer {API_KEY}", "")  # only where we put it (the command echo)
