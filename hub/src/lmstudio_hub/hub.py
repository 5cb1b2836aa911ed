"""The AI Bridge hub: a WebSocket server that agents connect out to, and the dispatcher of their tasks.

Agents authenticate in the handshake (``Authorization: Bearer <token>``: their own token from the identity
list, see :mod:`lmstudio_hub.identities`, or the shared token), register once per connection, and
receive ``task:execute`` frames. :meth:`BridgeHub.submit` is the one way in for work (the HTTP ``/execute``
route and the benchmark use it): it picks a connected agent that has the model and tools, waits for its
``task:result``, and requeues the task to another agent when its agent disconnects, stops answering
keepalive pings or exceeds the attempt timeout. Delivery to agents is at least once; the answer to the
caller is exactly once: the first result for a ``task_id`` wins and later ones are dropped.

:meth:`BridgeHub.forward_chat` is the OpenAI-compatible pass-through (``POST /v1/chat/completions`` for a model
behind the hub): it sends the request as a ``chat:forward`` frame to a connected agent that serves the model
and registered the ``chat:forward`` capability, and hands back its ``chat:result`` (or its ``chat:chunk``
events as they come). It is not queued nor retried: a model request is not idempotent the way an agent task's
answer is cached, and a client of an OpenAI API retries itself.

:class:`BridgeHub` is the composition of the hub's parts, each with one job:

- :mod:`lmstudio_hub.transport`: the WebSocket server, the handshake, registration, and the frames;
- :mod:`lmstudio_hub.identities`: the agents admitted, reloaded when their list changes;
- :mod:`lmstudio_hub.scheduler`: which agent runs which task, retry and requeue;
- :mod:`lmstudio_hub.passthrough`: the chat pass-through;
- :mod:`lmstudio_hub.state`: what they share (the settings, the counters, the registered agents).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from typing import Any, Generic, TypeVar, overload

from lmstudio_agent.bridge.protocol import (
    DEFAULT_BRIDGE_PORT,
    MAX_FRAME_BYTES,
    ChatChunkData,
    ChatResultData,
    TaskEventData,
    TaskResultMessage,
)
from lmstudio_agent.deadline import Deadline
from lmstudio_agent.agent.events import RunEvent
from lmstudio_agent.agent.messages import AgentMessage

from .identities import Identities, IdentitySource, LiveIdentities
from .passthrough import ChatPassThrough
from .scheduler import Scheduler
from .state import Agent, AgentInfo, AgentRegistry, HubSettings, HubStats, logger
from .transport import Transport

__all__ = ["AgentInfo", "BridgeHub", "HubStats"]

SHUTTING_DOWN = "The bridge hub is shutting down"

T = TypeVar("T")


class _Setting(Generic[T]):
    """A hub attribute that is one of its settings: read from and written to the settings its parts read."""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    @overload
    def __get__(self, hub: None, owner: type | None = None) -> _Setting[T]: ...
    @overload
    def __get__(self, hub: BridgeHub, owner: type | None = None) -> T: ...
    def __get__(self, hub: BridgeHub | None, owner: type | None = None) -> T | _Setting[T]:
        if hub is None:
            return self
        value: T = getattr(hub._settings, self.name)
        return value

    def __set__(self, hub: BridgeHub, value: T) -> None:
        setattr(hub._settings, self.name, value)


class BridgeHub:
    """The hub. Agents present their own token from ``identities`` (an :class:`Identities` or an
    :class:`IdentitySource` whose file is re-read when it changes, see :meth:`reload_identities`), or the
    shared ``token`` (the simple mode: any agent_id, any tools). With neither the hub refuses to start.

    ``task_timeout`` bounds one attempt on one agent, ``max_attempts`` the attempts of a task, and the
    caller's :class:`Deadline` (``default_deadline`` when none) the whole task, queueing included. An agent
    that stops answering keepalive pings is dropped after ``ping_interval + ping_timeout + close_timeout``
    and its tasks requeued. An agent runs at most ``min(its max_concurrency, max_agent_concurrency)`` tasks
    at once; beyond that tasks wait in a queue of ``max_queue``, and a full queue is refused at once with
    HUB_BUSY.

    Args:
        token: The shared secret agents present (optional when ``identities`` are given).
        default_model: The model of a task that names none (empty: any agent).
        max_attempts: The most agents one task is tried on.
        task_timeout: Seconds one attempt on one agent may take.
        default_deadline: Seconds a task may take in all when its caller sets no deadline.
        max_queue: Tasks that may wait for a free agent before HUB_BUSY.
        max_agent_concurrency: The most tasks one agent runs at once, whatever it registered.
        ping_interval: Seconds between keepalive pings (None: no pings).
        ping_timeout: Seconds to wait for a pong (None: forever).
        close_timeout: Seconds to wait for a closing handshake.
        register_timeout: Seconds a new connection has to send a valid ``agent:register``.
        max_frame_bytes: The largest frame accepted; a larger one gets an error frame.
        retry_after_seconds: The ``Retry-After`` given with HUB_BUSY.
        remember_finished: How many finished task ids are remembered, so a late duplicate result is recognised.
        identities: The agents admitted, each with its own token and tools (an ``IdentitySource`` is re-read
            every ``identity_poll_seconds``); with ``token`` alone, any agent presenting it.
        identity_poll_seconds: How often an ``IdentitySource`` is re-read.
    """

    default_model = _Setting[str]()
    max_attempts = _Setting[int]()
    task_timeout = _Setting[float]()
    default_deadline = _Setting[float]()
    max_queue = _Setting[int]()
    max_agent_concurrency = _Setting[int]()
    ping_interval = _Setting[float | None]()
    ping_timeout = _Setting[float | None]()
    close_timeout = _Setting[float]()
    register_timeout = _Setting[float]()
    max_frame_bytes = _Setting[int]()
    retry_after_seconds = _Setting[int]()

    def __init__(
        self,
        token: str | None = None,
        *,
        identities: Identities | IdentitySource | None = None,
        identity_poll_seconds: float = 2.0,
        default_model: str = "",
        max_attempts: int = 3,
        task_timeout: float = 60.0,
        default_deadline: float = 60.0,
        max_queue: int = 256,
        max_agent_concurrency: int = 64,
        ping_interval: float | None = 10.0,
        ping_timeout: float | None = 10.0,
        close_timeout: float = 2.0,
        register_timeout: float = 10.0,
        max_frame_bytes: int = MAX_FRAME_BYTES,
        retry_after_seconds: int = 1,
        remember_finished: int = 10_000,
    ) -> None:
        self._identities = LiveIdentities(identities, token, identity_poll_seconds)
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        self._settings = HubSettings(
            default_model=default_model, max_attempts=max_attempts, task_timeout=task_timeout,
            default_deadline=default_deadline, max_queue=max_queue, max_agent_concurrency=max_agent_concurrency,
            ping_interval=ping_interval, ping_timeout=ping_timeout, close_timeout=close_timeout,
            register_timeout=register_timeout, max_frame_bytes=max_frame_bytes, retry_after_seconds=retry_after_seconds,
        )
        self.stats = HubStats()
        self._agents = AgentRegistry()
        # The scheduler and the pass-through send through the transport, which hands them the agents' frames.
        self._scheduler = Scheduler(self._settings, self._agents, self.stats, self._send, self._serving,
                                    remember_finished)
        self._chats = ChatPassThrough(self._settings, self._agents, self.stats, self._send, self._serving)
        self._transport = Transport(self._settings, self._agents, self._identities, self.stats,
                                    _Router(self._scheduler, self._chats))
        self._watch: asyncio.Task[None] | None = None

    def _send(self, agent: Agent, text: str) -> None:
        self._transport.send_soon(agent, text)

    def _serving(self) -> bool:
        return self._transport.serving

    # ------------------------------------------------------------------------------------- lifecycle

    async def start(self, host: str = "127.0.0.1", port: int = DEFAULT_BRIDGE_PORT) -> None:
        """Listen for agents on ``host:port`` (port 0: any free port, see :attr:`port`)."""
        await self._transport.start(host, port)
        if self._identities.watches:
            self._watch = asyncio.ensure_future(self._identities.watch(self.reload_identities))
        logger.info("bridge hub listening on ws://%s:%s", host, self.port)

    async def stop(self) -> None:
        """Fail what is pending (NO_AGENT_AVAILABLE: the hub is going away), close every connection."""
        self._transport.serving = False
        if self._watch is not None:
            self._watch.cancel()
            self._watch = None
        self._scheduler.fail_all(SHUTTING_DOWN)
        self._chats.fail_all(SHUTTING_DOWN)
        await self._transport.close()
        logger.info("bridge hub stopped")

    @property
    def port(self) -> int:
        return self._transport.port

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    @property
    def serving(self) -> bool:
        return self._transport.serving

    # ----------------------------------------------------------------------------------- inspection

    def agents(self) -> list[AgentInfo]:
        return self._agents.infos()

    @property
    def known_tools(self) -> frozenset[str]:
        """Every tool an agent has registered since the hub started (connected or not)."""
        return self._agents.known_tools

    def connected_tools(self) -> frozenset[str]:
        return self._agents.connected_tools()

    def has_side_effects(self, tools: Iterable[str]) -> bool:
        """Whether any of ``tools`` (none named: any tool at all) is marked as having side effects by an agent."""
        return self._agents.has_side_effects(tools)

    @property
    def queued(self) -> int:
        return self._scheduler.queued

    def owner_of(self, tools: Iterable[str]) -> str:
        """Who may serve a task naming ``tools`` (the agent identities allowed all of them): the cache keys
        answers by it, so an agent's answers are only ever served for tasks that agent may run."""
        return self._identities.owner_of(tools)

    # ------------------------------------------------------------------------------------ identities

    @property
    def identities(self) -> Identities:
        return self._identities.current

    @property
    def identity_poll_seconds(self) -> float:
        return self._identities.poll_seconds

    @identity_poll_seconds.setter
    def identity_poll_seconds(self, seconds: float) -> None:
        self._identities.poll_seconds = seconds

    def reload_identities(self) -> bool:
        """Read the identity source again and apply it (see :meth:`set_identities`). A malformed list is
        logged and ignored: the hub keeps the list it has. Returns whether the new list was applied."""
        identities = self._identities.reload()
        if identities is None:
            return False
        self.set_identities(identities)
        return True

    def set_identities(self, identities: Identities) -> list[str]:
        """Admit ``identities`` from now on; close the connection of every agent that is no longer admitted as
        it authenticated (revoked, token changed, or a registered tool no longer allowed). Returns their ids."""
        self._identities.current = identities
        revoked = []
        for agent in list(self._agents):
            if agent.identity is None or self._identities.admits(agent.identity, agent.tools):
                continue
            revoked.append(agent.agent_id)
            logger.warning("agent %s: its identity was revoked or changed; closing its connection", agent.agent_id)
            self._transport.close_soon(agent, "agent revoked")
        logger.info("agent identities applied: %d agent(s)%s", len(identities.agents),
                    ", and the shared token" if identities.shared_token else "")
        return revoked

    # ---------------------------------------------------------------------------------------- submit

    async def submit(
        self,
        instruction: str,
        tools: Iterable[str] = (),
        model: str | None = None,
        deadline: Deadline | None = None,
        on_event: Callable[[RunEvent], None] | None = None,
        *,
        documents: dict[str, str] | None = None,
    ) -> list[AgentMessage]:
        """Run ``instruction`` (with its ``documents``, sent in the ``task:execute`` frame) on a connected agent
        that has ``model`` (any, if empty) and every tool named.

        With ``on_event`` the agent is asked to stream (``task:execute`` with ``stream: true``) and each
        ``task:event`` of the attempt that holds the task goes to it as it arrives.

        Raises AgentError: NO_AGENT_AVAILABLE when no such agent is connected, HUB_BUSY when they are all at
        their limit and the queue is full (or stayed so until the deadline), UPSTREAM_TIMEOUT/UPSTREAM_ERROR
        when the attempts ran out, or the code the agent reported.
        """
        return await self._scheduler.submit(instruction, tools, model, deadline, on_event, documents=documents)

    # ---------------------------------------------------------------------------------- pass-through

    def chat_models(self) -> list[str]:
        """The models a connected agent passes chat requests through to (it registered ``chat:forward``)."""
        return self._chats.models()

    async def forward_chat(self, body: dict[str, Any], deadline: Deadline, *, stream: bool) -> Any:
        """Pass an OpenAI chat-completions ``body`` to an agent that serves ``body["model"]`` (see the module
        docstring): the answer's JSON, or (``stream``) its events as Server-Sent Events bytes, ending with
        ``data: [DONE]``. Raises AgentError: NO_AGENT_AVAILABLE when no such agent is connected, the agent's
        code (UPSTREAM_ERROR for one it may not send) when it fails before a stream starts, UPSTREAM_TIMEOUT.

        Args:
            body: The request body (``model`` one of :meth:`chat_models`).
            deadline: The request's deadline.
            stream: Whether the body asks for a stream.
        """
        return await self._chats.forward(body, deadline, stream=stream)


class _Router:
    """The transport's listener: each agent's frames, arrivals and departures to the part that owns them."""

    def __init__(self, scheduler: Scheduler, chats: ChatPassThrough) -> None:
        self.scheduler = scheduler
        self.chats = chats

    def agent_ready(self, agent: Agent) -> None:
        self.scheduler.drain()

    def agent_gone(self, agent: Agent, reason: str) -> None:
        self.scheduler.agent_lost(agent, reason)
        self.chats.agent_lost(agent, reason)
        self.scheduler.drain()

    def task_result(self, agent: Agent, msg: TaskResultMessage) -> str | None:
        return self.scheduler.on_result(agent, msg)

    def invalid_task_result(self, agent: Agent, task_id: str) -> None:
        self.scheduler.on_invalid_result(agent, task_id)

    def task_event(self, agent: Agent, data: TaskEventData) -> None:
        self.scheduler.on_event(agent, data)

    def chat_answer(self, agent: Agent, data: ChatChunkData | ChatResultData, kind: str) -> str | None:
        return self.chats.on_answer(agent, data, kind)
