"""The serverless bridge hubs as endpoint drivers: the bridge rows of the shared contract table (tests/endpoints).

Each is the adapter's own driver (the Worker's, the Lambda's: same requests, same stand-ins for the runtime)
switched into bridge mode, with home agents connecting out to it over real loopback WebSockets, through the
stand-in fronts (tests/cloudflare/runtime.WorkerFront, aws_hub.ApiGatewayFront), and running the core agent
loop on the scripted upstream, as the process hub's driver does (tests/bridge/hub_driver.py).
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any

from tests.bridge.hub_driver import EXTRA_MODELS, home_agent
from tests.cloudflare.runtime import DurableObjectNamespace, WorkerFront
from tests.endpoints.drivers.base import EndpointConfig
from tests.endpoints.drivers.lambda_driver import LambdaDriver
from tests.endpoints.drivers.worker_driver import WorkerDriver

from .aws_hub import (
    AGENTS_SECRET,
    CONNECTIONS_TABLE,
    TASKS_TABLE,
    ApiGatewayFront,
    LambdaPool,
    create_bridge_resources,
)


def agent_token(agent_id: str) -> str:
    return f"driver-token-of-{agent_id}-0123456789"


def home_models(config: EndpointConfig) -> list[tuple[str, str]]:
    """(agent_id, model): one agent per model the home machine serves, as on the process hub's driver."""
    return [(f"home-agent-{i}", model) for i, model in enumerate(dict.fromkeys((config.model, *EXTRA_MODELS)))]


def identities_text(config: EndpointConfig) -> str:
    return "\n".join(f"{agent_id}: {agent_token(agent_id)} *" for agent_id, _ in home_models(config))


class _HomeAgents:
    """The home agents, on the driver's event loop."""

    def __init__(self) -> None:
        self.backends: list[Any] = []
        self.serving: list[asyncio.Future[None]] = []

    async def start(self, config: EndpointConfig, url: str, online: Any) -> None:
        for agent_id, model in home_models(config):
            backend, serving = home_agent(config, url, agent_id, model, agent_token(agent_id))
            self.backends.append(backend)
            self.serving.append(serving)
        async with asyncio.timeout(20):
            while len(await online()) < len(self.serving):
                for task in self.serving:
                    if task.done():
                        task.result()
                await asyncio.sleep(0.02)

    async def stop(self) -> None:
        for task in self.serving:
            task.cancel()
        await asyncio.gather(*self.serving, return_exceptions=True)
        for backend in self.backends:
            await backend.aclose()


class WorkerBridgeDriver(WorkerDriver):
    """The Worker with ``BRIDGE_AGENTS`` and the ``AGENTS``/``DIRECTORY`` objects: ``/execute`` runs on agents."""

    name = "worker-bridge"

    def __init__(self, config: EndpointConfig) -> None:
        super().__init__(config)
        self.env.BRIDGE_AGENTS = identities_text(config)
        self.env.BRIDGE_MODEL = config.model
        self.agents_ns = DurableObjectNamespace(self.entry.AgentObject, self.env)
        self.directory_ns = DurableObjectNamespace(self.entry.DirectoryObject, self.env)
        self.env.AGENTS = self.agents_ns
        self.env.DIRECTORY = self.directory_ns
        self.front = WorkerFront(self.entry, self.env, [self.agents_ns])
        self.home = _HomeAgents()
        self._run(self._start(config))

    async def _start(self, config: EndpointConfig) -> None:
        await self.front.start()
        await self.home.start(config, self.front.url + "/bridge", self._online)

    async def _online(self) -> list[Any]:
        stub = self.directory_ns.get(self.directory_ns.idFromName("directory"))
        return await (await stub.fetch("https://bridge.internal/agents")).json()

    def close(self) -> None:
        async def stop() -> None:
            await self.home.stop()
            await self.front.stop()

        self._run(stop())
        super().close()


class LambdaBridgeDriver(LambdaDriver):
    """The API function with ``BRIDGE_AGENTS_SECRET``: ``/execute`` posts to agents connected to the WebSocket
    API's stand-in, whose routes run ``bridge_handler`` in Lambda containers of their own."""

    name = "lambda-bridge"

    def __init__(self, config: EndpointConfig) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="api-gateway", daemon=True)
        self.thread.start()
        self.lambdas = LambdaPool()
        self.front = ApiGatewayFront(lambda event: self.lambdas.call("bridge_handler", event))
        self._on_loop(self.front.start())
        super().__init__(config, passthrough_services=("apigatewaymanagementapi",), extra_env={
            "BRIDGE_AGENTS_SECRET": AGENTS_SECRET, "CONNECTIONS_TABLE": CONNECTIONS_TABLE, "TASKS_TABLE": TASKS_TABLE,
            "BRIDGE_CALLBACK_URL": self.front.callback_url, "BRIDGE_MODEL": config.model,
        })
        create_bridge_resources(self.aws.dynamodb, self.aws.secrets, identities_text(config))
        import ws_bridge

        ws_bridge.clients.__init__()  # this sandbox's clients
        self.lambdas.warm = True
        self.home = _HomeAgents()
        self._on_loop(self.home.start(config, self.front.url, self._online))

    def _on_loop(self, coro: Any, timeout: float = 60.0) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    async def _online(self) -> list[Any]:
        from ws_bridge import Tables

        return Tables().agents()

    def close(self) -> None:
        async def stop() -> None:
            await self.home.stop()
            await self.front.stop()

        self._on_loop(stop())
        self.lambdas.close()
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        super().close()
