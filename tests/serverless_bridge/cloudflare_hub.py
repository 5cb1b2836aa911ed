"""The Worker as a bridge hub, for the serverless bridge tests: the real ``cloudflare/src`` (entry.py,
do_bridge.py) and core package, over the Workers runtime stand-in (tests/cloudflare/runtime.py).

BOUNDARY: workerd cannot run a Python Worker here (it downloads Pyodide at start), and Cloudflare's edge is
not here. So the agents' real WebSocket connections end at :class:`~tests.cloudflare.runtime.WorkerFront`
(a loopback server that hands the handshake to the Worker's ``fetch`` and each frame to the Durable Object
that accepted the socket, through the Hibernation API's handlers), and the objects run on the stand-in's
Durable Object namespaces. Clients' ``/execute`` calls are ``Default.fetch`` calls, as the runtime makes them.
"""

from __future__ import annotations

import json
from typing import Any

from tests.cloudflare.runtime import (
    DurableObjectNamespace,
    ExecutionContext,
    KVNamespace,
    Request,
    WorkerEnv,
    WS_CLOSED,
    WorkerFront,
    load_entry,
)

ORIGIN = "https://lmstudio-agent.example.workers.dev"


class CloudflareHub:
    """The Worker with its ``AGENTS``/``DIRECTORY``/``RUNS`` objects and the loopback front.

    Args:
        agents_text: The ``BRIDGE_AGENTS`` secret.
        client_key: The ``CLIENT_API_KEY`` secret.
        deadline_seconds: ``EXECUTE_DEADLINE_SECONDS``.
    """

    name = "cloudflare"

    def __init__(self, agents_text: str, client_key: str, deadline_seconds: float = 25.0) -> None:
        self.entry = load_entry()
        self.env = WorkerEnv(
            vars={"EXECUTE_DEADLINE_SECONDS": f"{deadline_seconds:g}", "CACHE_TTL_SECONDS": "3600",
                  "LM_STUDIO_URL": "http://127.0.0.1:9/v1"},
            secrets={"CLIENT_API_KEY": client_key, "BRIDGE_AGENTS": agents_text},
            bindings={"CACHE": KVNamespace()},
        )
        self.agents_ns = DurableObjectNamespace(self.entry.AgentObject, self.env)
        self.directory_ns = DurableObjectNamespace(self.entry.DirectoryObject, self.env)
        self.runs_ns = DurableObjectNamespace(self.entry.RunObject, self.env)
        self.env.AGENTS = self.agents_ns
        self.env.DIRECTORY = self.directory_ns
        self.env.RUNS = self.runs_ns
        self.front = WorkerFront(self.entry, self.env, [self.agents_ns])

    async def start(self) -> CloudflareHub:
        await self.front.start()
        return self

    async def stop(self) -> None:
        await self.front.stop()

    @property
    def url(self) -> str:
        return self.front.url + "/bridge"

    async def request(self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
                      ) -> tuple[int, Any]:
        """One client request through the Worker's ``fetch``: (status, JSON body)."""
        text = None if body is None else (body if isinstance(body, str) else json.dumps(body))
        request = Request(ORIGIN + path, method=method, headers=headers or {}, body=text)
        response = await self.entry.Default(ExecutionContext(), self.env).fetch(request)
        raw = await response.text()
        return response.status, (json.loads(raw) if raw else None)

    async def online(self) -> list[str]:
        """The agent ids the directory lists."""
        stub = self.directory_ns.get(self.directory_ns.idFromName("directory"))
        answer = await stub.fetch("https://bridge.internal/agents")
        return sorted(entry["agent_id"] for entry in json.loads(await answer.text()))

    def hibernate(self, agent_id: str) -> bool:
        """Evict the agent's object from memory; its socket stays open (the Hibernation API's promise)."""
        return self.agents_ns.hibernate(self.agents_ns.idFromName(agent_id))

    def constructed(self) -> int:
        return self.agents_ns.constructed

    def heartbeats_answered(self) -> int:
        """Heartbeats answered by the auto-response, without the object."""
        return self.agents_ns.auto_responses

    async def make_stale(self, agent_id: str) -> None:
        """The runtime loses the agent's socket without running ``webSocketClose`` (the object's directory
        entry is then stale until a task finds the socket gone)."""
        state = self.agents_ns.states[self.agents_ns.idFromName(agent_id)]
        for ws in state.getWebSockets():
            ws.readyState = WS_CLOSED

    async def tick(self) -> None:
        """Nothing to drive: a run's alarm fires on the event loop by itself."""
