"""The agent side of the AI Bridge: connect out to a hub, register, and serve its tasks until cancelled.

The runner is any async callable ``(instruction, tool_names) -> list[AgentMessage]`` that raises AgentError on
failure (``LMStudioAgent.connect_to_bridge()`` passes its own ``aact``); a task that carries documents calls it
as ``runner(instruction, tool_names, documents)``. The first connection must succeed:
an unreachable hub raises :class:`~lmstudio_agent.errors.BridgeConnectionError` (a ``ConnectionError`` with
CONNECTION_FAILED) and a refused token or agent_id raises :class:`BridgeRefusedError`. After that a lost
connection is retried with capped exponential backoff and jitter, and the agent registers again.

This module holds the session (connect, register, receive the hub's frames, reconnect); running the tasks and
the pass-through requests it receives, and sending their results, is :mod:`._task_serving`'s.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
from typing import Any, NoReturn
from collections.abc import Iterable

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus, InvalidURI

from ..errors import AgentError, BridgeConnectionError, ErrorCode
from ..agent.tools import Tool
from ._task_serving import FRAGMENT_CHARS as FRAGMENT_CHARS
from ._task_serving import Forwarder as Forwarder
from ._task_serving import Runner as Runner
from ._task_serving import Streamer as Streamer
from ._task_serving import _TaskServing
from .protocol import (
    CHAT_FORWARD,
    DEFAULT_BRIDGE_URL,
    HARD_LIMIT_FACTOR,
    MAX_FRAME_BYTES,
    ChatForwardMessage,
    ErrorMessage,
    HeartbeatAckMessage,
    HeartbeatMessage,
    RegisterData,
    RegisterMessage,
    RegistrationErrorMessage,
    RegistrationSuccessMessage,
    TaskCancelMessage,
    TaskExecuteMessage,
    encode,
    error_frame,
    parse_frame,
)

logger = logging.getLogger("lmstudio_agent.bridge.agent")

# Well inside API Gateway's 10-minute idle timeout, and rare enough to cost nothing (one Lambda invocation
# every 4 minutes on AWS; none on Cloudflare, whose runtime answers it).
DEFAULT_HEARTBEAT_SECONDS = 240.0


class BridgeRefusedError(AgentError, ConnectionError):
    """The hub refused this agent: a bad token (UNAUTHORIZED/FORBIDDEN), an agent_id already connected
    (FORBIDDEN) or an invalid registration (INVALID_REQUEST). Retrying would not help, so it is raised."""


class _Retry(Exception):
    """This connection is over; connect again after a backoff."""


class BridgeAgent(_TaskServing):
    """One agent's session with a hub. :meth:`run` serves until cancelled; see the module docstring.

    Args:
        runner: Runs one task: ``(instruction, tool_names) -> transcript``, raising AgentError on failure.
        bridge_url: The hub's WebSocket URL.
        agent_id: The id this agent registers under (one connection per id).
        token: The secret the hub expects from agents (sent as ``Authorization: Bearer``).
        model: The model this agent serves, registered with the hub.
        capabilities: Free-form capability names registered with the hub.
        tools: The names of the tools this agent runs.
        side_effect_tools: Those of ``tools`` with side effects (the hub never caches their answers).
        max_concurrency: The most tasks this agent runs at once.
        open_timeout: Seconds to connect and to get an answer to ``agent:register``.
        ping_interval: Seconds between keepalive pings (None: no pings).
        ping_timeout: Seconds to wait for a pong before the connection counts as lost (None: forever).
        backoff_initial: The first reconnect delay, in seconds; it doubles, with jitter, up to ``backoff_max``.
        backoff_max: The longest reconnect delay, in seconds.
        max_frame_bytes: The largest frame sent or accepted; a larger result is answered as PAYLOAD_TOO_LARGE
            (and so is one over the hub's own limit, when its ``registration:success`` names one). Messages are
            sent in frames of at most 32 KB (API Gateway's frame limit; every hub reassembles them).
        streamer: Runs a task sent with ``stream: true`` and yields its events, each sent as a ``task:event``
            frame before the result (None: such tasks run through ``runner``, with no events).
        forwarder: Passes the hub's ``chat:forward`` requests to this agent's model server (registered as the
            ``chat:forward`` capability; None: the agent takes agent tasks only).
        heartbeat_interval: Seconds between ``heartbeat`` text frames (None: none). Serverless hubs need them:
            API Gateway closes a WebSocket idle for 10 minutes whatever its pings, and Cloudflare answers the
            frame without waking the agent's Durable Object; the process hub answers it too.
    """

    def __init__(
        self,
        runner: Runner,
        *,
        bridge_url: str = DEFAULT_BRIDGE_URL,
        agent_id: str,
        token: str | None,
        model: str,
        capabilities: Iterable[str] = (),
        tools: Iterable[str] = (),
        side_effect_tools: Iterable[str] = (),
        max_concurrency: int = 1,
        open_timeout: float = 10.0,
        ping_interval: float | None = 20.0,
        ping_timeout: float | None = 20.0,
        backoff_initial: float = 0.5,
        backoff_max: float = 30.0,
        max_frame_bytes: int = MAX_FRAME_BYTES,
        streamer: Streamer | None = None,
        forwarder: Forwarder | None = None,
        heartbeat_interval: float | None = DEFAULT_HEARTBEAT_SECONDS,
    ) -> None:
        """Set up the session; nothing connects until :meth:`run`."""
        self.runner = runner
        self.heartbeat_interval = heartbeat_interval
        self.streamer = streamer
        self.forwarder = forwarder
        if forwarder is not None:
            capabilities = [*capabilities, CHAT_FORWARD]
        self.bridge_url = bridge_url
        self.token = token
        self.registration = RegisterData(
            agent_id=agent_id,
            capabilities=list(capabilities),
            model=model,
            tools=list(dict.fromkeys(tools)),
            side_effect_tools=list(dict.fromkeys(side_effect_tools)),
            max_concurrency=max_concurrency,
        )
        self.open_timeout = open_timeout
        self.ping_interval = ping_interval
        self.ping_timeout = ping_timeout
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        self.max_frame_bytes = max_frame_bytes
        self.send_limit = max_frame_bytes  # lowered by a hub that names a smaller message limit
        self.registered = asyncio.Event()  # set while registered with a hub
        self.registrations = 0  # how many times it has registered (1 + reconnects)
        self.tasks_done = 0
        self.connection: ClientConnection | None = None  # the live connection, while there is one
        self._running: dict[str, asyncio.Task[None]] = {}
        self._slots = asyncio.Semaphore(max_concurrency)

    async def run(self) -> None:
        """Connect, register and serve; reconnect on loss. Returns only by cancellation or a raised refusal."""
        conn = await self._open(first=True)
        failures = 0
        while True:
            self.connection = conn
            try:
                await self._serve(conn)
            except _Retry as exc:
                logger.warning("agent %s: %s; reconnecting", self.agent_id, exc)
            finally:
                self.registered.clear()
                self.connection = None
                await self._stop_running()
                await conn.close()
            while True:
                delay = self._backoff(failures)
                failures += 1
                await asyncio.sleep(delay)
                try:
                    conn = await self._open(first=False)
                    failures = 0
                    break
                except _Retry as exc:
                    logger.warning("agent %s: %s; retrying", self.agent_id, exc)

    # ------------------------------------------------------------------------------------- connecting

    async def _open(self, *, first: bool) -> ClientConnection:
        """Connect and register. The first time, failures raise; later ones raise :class:`_Retry`."""
        try:
            conn = await connect(
                self.bridge_url,
                additional_headers={"Authorization": f"Bearer {self.token}"} if self.token else None,
                open_timeout=self.open_timeout,
                ping_interval=self.ping_interval,
                ping_timeout=self.ping_timeout,
                max_size=self.max_frame_bytes * HARD_LIMIT_FACTOR,
                compression=None,
            )
        except InvalidStatus as exc:
            refusal = _refusal(exc)
            if refusal is not None:
                raise refusal from None
            self._connect_failed(first, f"the hub answered HTTP {exc.response.status_code}")
        except InvalidURI as exc:
            raise BridgeConnectionError(f"Invalid AI Bridge URL {self.bridge_url!r}: {exc}") from None
        except (OSError, TimeoutError, InvalidHandshake, ConnectionClosed) as exc:
            self._connect_failed(first, _describe(exc))
        logger.info("agent %s connected to %s; registering", self.agent_id, self.bridge_url)
        try:
            await self._register(conn, first=first)
        except BaseException:
            await conn.close()
            raise
        return conn

    def _connect_failed(self, first: bool, why: str) -> NoReturn:
        if first:
            raise BridgeConnectionError(f"AI Bridge at {self.bridge_url} is not reachable: {why}")
        raise _Retry(f"AI Bridge at {self.bridge_url} is not reachable: {why}")

    async def _register(self, conn: ClientConnection, *, first: bool) -> None:
        await conn.send(encode(RegisterMessage(data=self.registration)))
        try:
            async with asyncio.timeout(self.open_timeout):
                while True:
                    msg = self._parse(await conn.recv())
                    if isinstance(msg, RegistrationSuccessMessage):
                        hub_limit = msg.data.max_message_bytes
                        self.send_limit = min(self.max_frame_bytes, hub_limit or self.max_frame_bytes)
                        break
                    if isinstance(msg, RegistrationErrorMessage):
                        refusal = BridgeRefusedError(msg.data.code, f"The hub refused agent {self.agent_id!r}: {msg.data.error}")
                        # A dropped connection can outlive its agent on the hub until the hub's keepalive
                        # notices; on a reconnect the id clash is that, so it is worth waiting out.
                        if not first and msg.data.code is ErrorCode.FORBIDDEN and "already connected" in msg.data.error:
                            raise _Retry(refusal.message)
                        raise refusal
                    if isinstance(msg, ErrorMessage):
                        logger.warning("agent %s: hub error while registering: %s", self.agent_id, msg.data.error)
        except TimeoutError:
            self._connect_failed(first, f"no answer to agent:register within {self.open_timeout:g}s")
        except ConnectionClosed as exc:
            self._connect_failed(first, f"connection closed while registering ({_describe(exc)})")
        self.registrations += 1
        self.registered.set()
        logger.info("agent %s registered with %s (tools: %s; up to %d task(s) at once); waiting for tasks",
                    self.agent_id, self.bridge_url, ", ".join(sorted(self.tools)) or "none", self.registration.max_concurrency)

    def _backoff(self, failures: int) -> float:
        """Capped exponential backoff with jitter: half fixed, half random, so a crowd of agents spreads out."""
        ceiling: float = min(self.backoff_max, self.backoff_initial * (2.0**failures))
        return ceiling / 2 + random.uniform(0, ceiling / 2)

    # -------------------------------------------------------------------------------------- serving

    async def _heartbeat(self, conn: ClientConnection) -> None:
        assert self.heartbeat_interval is not None
        while True:
            await asyncio.sleep(self.heartbeat_interval)
            await self._send_text(conn, encode(HeartbeatMessage()))

    async def _serve(self, conn: ClientConnection) -> None:
        beating = asyncio.ensure_future(self._heartbeat(conn)) if self.heartbeat_interval else None
        try:
            await self._receive(conn)
        finally:
            if beating is not None:
                beating.cancel()

    async def _receive(self, conn: ClientConnection) -> None:
        try:
            async for raw in conn:
                msg = self._parse(raw)
                if isinstance(msg, TaskExecuteMessage):
                    await self._start_task(conn, msg)
                elif isinstance(msg, ChatForwardMessage):
                    self._start_forward(conn, msg)
                elif isinstance(msg, TaskCancelMessage):
                    # Forgotten at once: the hub may send the same task again before this run has unwound.
                    running = self._running.pop(msg.data.task_id, None)
                    if running is not None:
                        logger.info("agent %s: task %s cancelled by the hub (%s)", self.agent_id, msg.data.task_id, msg.data.reason)
                        running.cancel()
                elif isinstance(msg, HeartbeatMessage):
                    await conn.send(encode(HeartbeatAckMessage(data=msg.data)))
                elif isinstance(msg, ErrorMessage):
                    logger.warning("agent %s: hub reported %s: %s", self.agent_id, msg.data.code.value, msg.data.error)
                elif isinstance(msg, (HeartbeatAckMessage, RegistrationSuccessMessage)):
                    pass
                elif msg is not None:
                    await conn.send(
                        error_frame(ErrorCode.INVALID_REQUEST, f"Unexpected {msg.type!r} from the hub", message_type=msg.type)
                    )
        except ConnectionClosed as exc:
            raise _Retry(f"connection lost ({_describe(exc)})") from None
        raise _Retry(f"the hub closed the connection ({_close_info(conn)})")

    def _parse(self, raw: str | bytes) -> Any:
        try:
            return parse_frame(raw, max_bytes=self.max_frame_bytes)
        except AgentError as exc:
            # Never answer an error with an error: two peers could otherwise ping-pong forever.
            logger.warning("agent %s: bad frame from the hub: %s", self.agent_id, exc.message)
            return None


async def serve_agent(
    runner: Runner,
    *,
    bridge_url: str = DEFAULT_BRIDGE_URL,
    agent_id: str,
    token: str | None,
    model: str,
    capabilities: Iterable[str] = (),
    tools: Iterable[str] = (),
    side_effect_tools: Iterable[str] = (),
    max_concurrency: int = 1,
    registry: Iterable[Tool] | None = None,
    **options: Any,
) -> None:
    """Serve ``runner`` as agent ``agent_id`` of the hub at ``bridge_url`` until cancelled.

    ``registry``: the tools to register, in place of ``tools`` and ``side_effect_tools`` (their names, and
    which have side effects, are read from it). ``options`` are :class:`BridgeAgent`'s (timeouts, backoff,
    frame limit). Raises BridgeConnectionError when the first connection fails and BridgeRefusedError when
    the hub refuses the token or the agent_id.
    """
    if registry is not None:
        offered = list(registry)
        tools = [tool.name for tool in offered]
        side_effect_tools = [tool.name for tool in offered if tool.side_effects]
    agent = BridgeAgent(
        runner,
        bridge_url=bridge_url,
        agent_id=agent_id,
        token=token,
        model=model,
        capabilities=capabilities,
        tools=tools,
        side_effect_tools=side_effect_tools,
        max_concurrency=max_concurrency,
        **options,
    )
    await agent.run()



def _refusal(exc: InvalidStatus) -> BridgeRefusedError | None:
    status = exc.response.status_code
    if status not in (401, 403):
        return None
    code = ErrorCode.UNAUTHORIZED if status == 401 else ErrorCode.FORBIDDEN
    message = "the hub refused the token"
    try:
        body = json.loads(exc.response.body or b"{}")
        message = str(body.get("error") or message)
        code = ErrorCode(body.get("code", code))
    except (ValueError, AttributeError):
        pass
    return BridgeRefusedError(code, f"AI Bridge refused the agent's token: {message}")


def _describe(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return f"{type(exc).__name__}: {text}" if text != type(exc).__name__ else text


def _close_info(conn: ClientConnection) -> str:
    if conn.close_code is None:
        return "no close code"
    return f"code {conn.close_code}" + (f": {conn.close_reason}" if conn.close_reason else "")
