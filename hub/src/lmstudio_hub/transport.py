"""The hub's transport: the WebSocket server agents connect out to, their connections, and the frames on them.

A connection authenticates in the handshake (``Authorization: Bearer <token>``, checked against the
:class:`~lmstudio_hub.identities.LiveIdentities`; refused with 401/403 and the contract's JSON body), then has
``register_timeout`` to send a valid ``agent:register``, which admits it into the
:class:`~lmstudio_hub.state.AgentRegistry`. From then on the transport reads its frames: it answers heartbeats
and protocol errors itself, and hands task results, task events and chat answers to its :class:`FrameListener`
(the hub, which passes them to the scheduler or the pass-through). It tells the listener when an agent is
ready and when its connection ends, and sends frames to agents without making the sender wait.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, Protocol

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.frames import CloseCode
from websockets.http11 import Request, Response

from lmstudio_agent.bridge.protocol import (
    HARD_LIMIT_FACTOR,
    ChatChunkData,
    ChatChunkMessage,
    ChatResultData,
    ChatResultMessage,
    ErrorMessage,
    HeartbeatAckMessage,
    HeartbeatMessage,
    RegisterData,
    RegisterMessage,
    RegistrationErrorData,
    RegistrationErrorMessage,
    RegistrationSuccessData,
    RegistrationSuccessMessage,
    TaskEventData,
    TaskEventMessage,
    TaskResultMessage,
    encode,
    error_frame,
    parse_frame,
)
from lmstudio_agent.endpoint.contract import error_response, presented_key
from lmstudio_agent.errors import AgentError, ErrorCode

from .identities import AgentIdentity, LiveIdentities, refusal_of
from .state import Agent, AgentRegistry, HubSettings, HubStats, logger


class FrameListener(Protocol):
    """Who the transport hands an agent's comings and goings and its task and chat frames to."""

    def agent_ready(self, agent: Agent) -> None:
        """``agent`` registered and was told so: it may take work."""

    def agent_gone(self, agent: Agent, reason: str) -> None:
        """``agent``'s connection ended (``reason``); it is already out of the registry."""

    def task_result(self, agent: Agent, msg: TaskResultMessage) -> str | None:
        """A ``task:result``; the returned frame, if any, is sent back to ``agent``."""

    def invalid_task_result(self, agent: Agent, task_id: str) -> None:
        """``agent`` sent a ``task:result`` for ``task_id`` that is not valid (it has had its error frame)."""

    def task_event(self, agent: Agent, data: TaskEventData) -> None:
        """A ``task:event``."""

    def chat_answer(self, agent: Agent, data: ChatChunkData | ChatResultData, kind: str) -> str | None:
        """A ``chat:chunk`` or ``chat:result``; the returned frame, if any, is sent back to ``agent``."""


class Transport:
    """The WebSocket server, its connections and their frames (see the module docstring).

    Args:
        settings: The hub's settings (keepalive, timeouts, frame size, an agent's concurrency cap).
        agents: The registry an admitted agent joins and a closed connection leaves.
        identities: Who may connect, and as whom.
        stats: The hub's counters (``protocol_errors``).
        listener: Who gets the agents' comings and goings and their task and chat frames.
    """

    def __init__(self, settings: HubSettings, agents: AgentRegistry, identities: LiveIdentities, stats: HubStats,
                 listener: FrameListener) -> None:
        self.settings = settings
        self.agents = agents
        self.identities = identities
        self.stats = stats
        self.listener = listener
        self._sends: set[asyncio.Task[None]] = set()
        self._server: Server | None = None
        self.serving = False

    # ------------------------------------------------------------------------------------- lifecycle

    async def start(self, host: str, port: int) -> None:
        """Listen on ``host:port`` (port 0: any free port, see :attr:`port`) and admit agents."""
        settings = self.settings
        self._server = await serve(
            self._handle,
            host,
            port,
            process_request=self._authorize,
            ping_interval=settings.ping_interval,
            ping_timeout=settings.ping_timeout,
            max_size=settings.max_frame_bytes * HARD_LIMIT_FACTOR,
            compression=None,  # small JSON frames on a LAN or loopback: deflate costs more than it saves
            open_timeout=10,
            close_timeout=settings.close_timeout,
        )
        self.serving = True

    async def close(self) -> None:
        """Close the server and every connection; drop the sends still on their way."""
        self.serving = False
        if self._server is not None:
            self._server.close(close_connections=True)
            await self._server.wait_closed()
            self._server = None
        for send in list(self._sends):
            send.cancel()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the hub is not started")
        return int(self._server.sockets[0].getsockname()[1])

    # ------------------------------------------------------------------------------------------ sends

    def send_soon(self, agent: Agent, text: str) -> None:
        """Send ``text`` to ``agent`` in the background (a closed connection reports itself: see ``_handle``)."""
        self._background(self._send(agent, text))

    def close_soon(self, agent: Agent, reason: str) -> None:
        """Close ``agent``'s connection with a policy-violation code and ``reason``, in the background."""
        self._background(agent.conn.close(CloseCode.POLICY_VIOLATION, reason))

    def _background(self, coro: Coroutine[Any, Any, None]) -> None:
        send = asyncio.get_running_loop().create_task(coro)
        self._sends.add(send)
        send.add_done_callback(self._sends.discard)

    async def _send(self, agent: Agent, text: str) -> None:
        try:
            await agent.conn.send(text)
        except ConnectionClosed:
            pass  # the connection's handler requeues whatever the agent held

    # ------------------------------------------------------------------------------------ connection

    def _authorize(self, connection: ServerConnection, request: Request) -> Response | None:
        """The handshake check: the contract's rule for credentials (one, not repeated), then the token
        compared in constant time with every admitted agent's; 401/403 with the contract's JSON bodies."""
        try:
            key = presented_key(request.headers.raw_items())
        except AgentError as exc:
            refused = error_response(exc.code, exc.message, {"WWW-Authenticate": "Bearer"})
        else:
            if key is None:
                refused = error_response(ErrorCode.UNAUTHORIZED, "Missing token: send 'Authorization: Bearer <token>'",
                                         {"WWW-Authenticate": "Bearer"})
            elif self.identities.authenticate(key) is None:
                refused = error_response(ErrorCode.FORBIDDEN, "Invalid token")
            else:
                return None
        logger.warning("refused an agent connection from %s: %s", connection.remote_address, refused.body["code"])
        response = connection.respond(refused.status, refused.json())
        del response.headers["Content-Type"]
        response.headers["Content-Type"] = "application/json"
        for name, value in refused.headers.items():
            response.headers[name] = value
        return response

    async def _handle(self, conn: ServerConnection) -> None:
        identity = self.identities.identify(conn.request.headers.raw_items()) if conn.request is not None else None
        if identity is None:  # revoked between the handshake and now
            await conn.close(CloseCode.POLICY_VIOLATION, "agent revoked")
            return
        agent = await self._register(conn, identity)
        if agent is None:
            return
        try:
            await conn.send(encode(RegistrationSuccessMessage(data=RegistrationSuccessData(agent_id=agent.agent_id))))
            self.listener.agent_ready(agent)
            async for raw in conn:
                reply = self._on_frame(agent, raw)
                if reply is not None:
                    await conn.send(reply)
        except ConnectionClosed:
            pass
        finally:
            self._on_disconnect(agent, conn)

    async def _register(self, conn: ServerConnection, identity: AgentIdentity) -> Agent | None:
        """Wait for a valid ``agent:register``; answer bad frames with errors until ``register_timeout``."""
        loop = asyncio.get_running_loop()
        register_timeout = self.settings.register_timeout
        give_up_at = loop.time() + register_timeout
        try:
            while True:
                try:
                    async with asyncio.timeout_at(give_up_at):
                        raw = await conn.recv()
                except TimeoutError:
                    message = f"No agent:register within {register_timeout:g}s"
                    await conn.send(_registration_error(None, ErrorCode.INVALID_REQUEST, message))
                    await conn.close(CloseCode.POLICY_VIOLATION, "registration timeout")
                    return None
                try:
                    msg = parse_frame(raw, max_bytes=self.settings.max_frame_bytes)
                except AgentError as exc:
                    self.stats.protocol_errors += 1
                    logger.warning("bad frame before registration from %s: %s", conn.remote_address, exc.message)
                    if exc.details.get("type") == "agent:register":
                        await conn.send(_registration_error(None, exc.code, exc.message))
                    else:
                        await conn.send(error_frame(exc.code, exc.message, message_type=exc.details.get("type")))
                    continue
                if not isinstance(msg, RegisterMessage):
                    self.stats.protocol_errors += 1
                    await conn.send(
                        error_frame(
                            ErrorCode.INVALID_REQUEST,
                            f"Register first: the first message must be agent:register, not {msg.type}",
                            message_type=msg.type,
                        )
                    )
                    continue
                return await self._admit(conn, msg.data, identity)
        except ConnectionClosed:
            return None

    async def _admit(self, conn: ServerConnection, data: RegisterData, identity: AgentIdentity) -> Agent | None:
        if not self.serving:
            await conn.send(_registration_error(data.agent_id, ErrorCode.NO_AGENT_AVAILABLE, "The hub is shutting down"))
            await conn.close(CloseCode.GOING_AWAY, "hub shutting down")
            return None
        refusal = refusal_of(identity, data.agent_id, data.tools)
        if refusal is not None:
            logger.warning("refused a registration from %s: %s", conn.remote_address, refusal)
            await conn.send(_registration_error(data.agent_id, ErrorCode.FORBIDDEN, refusal))
            await conn.close(CloseCode.POLICY_VIOLATION, "registration not allowed")
            return None
        if data.agent_id in self.agents:
            logger.warning("refused a second connection for agent_id %r from %s", data.agent_id, conn.remote_address)
            message = f"agent_id {data.agent_id!r} is already connected to this hub from another connection"
            await conn.send(_registration_error(data.agent_id, ErrorCode.FORBIDDEN, message))
            await conn.close(CloseCode.POLICY_VIOLATION, "agent_id in use")
            return None
        agent = Agent(
            agent_id=data.agent_id,
            conn=conn,
            model=data.model,
            capabilities=tuple(data.capabilities),
            tools=frozenset(data.tools),
            side_effect_tools=frozenset(data.side_effect_tools),
            max_concurrency=min(data.max_concurrency, self.settings.max_agent_concurrency),
            identity=identity,
        )
        self.agents.add(agent)
        logger.info(
            "agent %s registered from %s: model %s, %d tool(s), concurrency %d",
            agent.agent_id, conn.remote_address, agent.model, len(agent.tools), agent.max_concurrency,
        )
        return agent

    def _on_disconnect(self, agent: Agent, conn: ServerConnection) -> None:
        self.agents.remove(agent)
        reason = f"code {conn.close_code}" if conn.close_code is not None else "connection lost"
        if conn.close_reason:
            reason += f": {conn.close_reason}"
        logger.info("agent %s disconnected (%s); %d task(s) to requeue", agent.agent_id, reason, len(agent.active))
        self.listener.agent_gone(agent, reason)

    def _on_frame(self, agent: Agent, raw: str | bytes) -> str | None:
        """Handle one frame from a registered agent; the returned text, if any, is sent back to it."""
        try:
            msg = parse_frame(raw, max_bytes=self.settings.max_frame_bytes)
        except AgentError as exc:
            self.stats.protocol_errors += 1
            kind, task_id = exc.details.get("type"), exc.details.get("task_id")
            logger.warning("agent %s sent a bad frame: %s", agent.agent_id, exc.message)
            if kind == "task:result" and task_id:
                self.listener.invalid_task_result(agent, task_id)
            return error_frame(exc.code, exc.message, task_id=task_id, message_type=kind)
        if isinstance(msg, TaskResultMessage):
            return self.listener.task_result(agent, msg)
        if isinstance(msg, (ChatChunkMessage, ChatResultMessage)):
            return self.listener.chat_answer(agent, msg.data, msg.type)
        if isinstance(msg, TaskEventMessage):
            self.listener.task_event(agent, msg.data)
            return None
        if isinstance(msg, HeartbeatMessage):
            return encode(HeartbeatAckMessage(data=msg.data))
        if isinstance(msg, HeartbeatAckMessage):
            return None
        if isinstance(msg, ErrorMessage):
            logger.warning("agent %s reported a protocol error: %s %s", agent.agent_id, msg.data.code.value, msg.data.error)
            return None
        self.stats.protocol_errors += 1
        if isinstance(msg, RegisterMessage):
            text = f"This connection is already registered as {agent.agent_id!r}"
        else:  # every other type an agent may send is handled above
            text = f"Message type {msg.type!r} is sent by the hub, not by an agent"
        logger.warning("agent %s: %s", agent.agent_id, text)
        return error_frame(ErrorCode.INVALID_REQUEST, text, message_type=msg.type)


def _registration_error(agent_id: str | None, code: ErrorCode, message: str) -> str:
    return encode(RegistrationErrorMessage(data=RegistrationErrorData(agent_id=agent_id, error=message, code=code)))
