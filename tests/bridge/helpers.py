"""Helpers for the AI Bridge tests: echo agents, agents started against a hub, raw protocol clients."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import Any
from collections.abc import Awaitable, Callable

from websockets.asyncio.client import ClientConnection, connect

from lmstudio_agent.bridge import BridgeAgent
from lmstudio_agent.agent.messages import AgentMessage

TOKEN = "hub-token-for-tests"
MODEL = "echo-model"
TOOLS = ("extract_data", "analyze_sentiment")


async def echo(instruction: str, tools: list[str], documents: dict[str, str] | None = None) -> list[AgentMessage]:
    """The echo agent's runner: answers at once with the instruction and the tools it was given (and the names
    of the documents, when the task carries some)."""
    named = f" {{{','.join(sorted(documents))}}}" if documents else ""
    return [AgentMessage(type="result", content=f"echo: {instruction} [{','.join(tools)}]{named}")]


def hub_options(**overrides: Any) -> dict[str, Any]:
    # Short keepalive and attempt timeouts keep the failure tests to fractions of a second.
    options: dict[str, Any] = dict(
        ping_interval=0.3, ping_timeout=0.3, close_timeout=0.3, task_timeout=5.0, default_deadline=10.0, register_timeout=2.0
    )
    options.update(overrides)
    return options


@dataclass
class AgentHandle:
    agent: BridgeAgent
    task: asyncio.Task

    def kill(self) -> None:
        """Die like a killed process: the TCP connection drops without a close frame, nothing more is sent."""
        conn = self.agent.connection
        self.task.cancel()
        if conn is not None:
            conn.transport.abort()


@dataclass
class Agents:
    handles: list[AgentHandle] = field(default_factory=list)

    async def start(
        self,
        url: str,
        runner: Callable[[str, list[str]], Awaitable[list[AgentMessage]]] = echo,
        *,
        agent_id: str | None = None,
        token: str = TOKEN,
        model: str = MODEL,
        tools: tuple[str, ...] = TOOLS,
        max_concurrency: int = 4,
        wait: bool = True,
        **options: Any,
    ) -> AgentHandle:
        options = {"backoff_initial": 0.05, "backoff_max": 0.3, "ping_interval": 0.3, "ping_timeout": 0.3, **options}
        agent = BridgeAgent(
            runner,
            bridge_url=url,
            agent_id=agent_id or f"agent-{len(self.handles) + 1}",
            token=token,
            model=model,
            tools=tools,
            max_concurrency=max_concurrency,
            **options,
        )
        handle = AgentHandle(agent, asyncio.create_task(agent.run()))
        self.handles.append(handle)
        if wait:
            await wait_registered(handle)
        return handle

    async def close(self) -> None:
        for handle in self.handles:
            handle.task.cancel()
        await asyncio.gather(*(h.task for h in self.handles), return_exceptions=True)


async def wait_registered(handle: AgentHandle, timeout: float = 5.0) -> None:
    registered = asyncio.ensure_future(handle.agent.registered.wait())
    done, _ = await asyncio.wait({registered, handle.task}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    if handle.task in done:
        registered.cancel()
        handle.task.result()  # raises what the agent raised
        raise AssertionError("the agent stopped before registering")
    if registered not in done:
        registered.cancel()
        raise AssertionError(f"agent {handle.agent.agent_id} did not register within {timeout}s")


async def raw_connect(url: str, token: str | None = TOKEN, **options: Any) -> ClientConnection:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return await connect(url, additional_headers=headers, open_timeout=5, compression=None, **options)


async def recv_json(conn: ClientConnection, timeout: float = 5.0) -> dict[str, Any]:
    return json.loads(await asyncio.wait_for(conn.recv(), timeout))


async def send_json(conn: ClientConnection, frame: dict[str, Any]) -> None:
    await conn.send(json.dumps(frame))


def register_frame(agent_id: str, **data: Any) -> dict[str, Any]:
    return {
        "type": "agent:register",
        "data": {"agent_id": agent_id, "capabilities": ["llm", "tool-use"], "model": MODEL, "tools": list(TOOLS), **data},
    }


async def raw_agent(url: str, agent_id: str, *, connect_options: dict[str, Any] | None = None, **data: Any) -> ClientConnection:
    """A hand-driven agent: connected, registered (``data`` goes into agent:register), checked accepted."""
    conn = await raw_connect(url, **(connect_options or {}))
    await send_json(conn, register_frame(agent_id, **data))
    reply = await recv_json(conn)
    assert reply == {"type": "registration:success", "data": {"agent_id": agent_id}}
    return conn

