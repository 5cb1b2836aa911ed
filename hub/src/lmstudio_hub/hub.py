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
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from typing import Any
from collections.abc import AsyncIterator, Callable, Iterable

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.frames import CloseCode
from websockets.http11 import Request, Response

from lmstudio_agent.endpoint.contract import error_response, presented_key
from lmstudio_agent.deadline import Deadline
from lmstudio_agent.errors import AgentError, ErrorCode
from lmstudio_agent.agent.events import RunEvent
from lmstudio_agent.agent.messages import AgentMessage
from lmstudio_agent.bridge.protocol import (
    CHAT_FORWARD,
    DEFAULT_BRIDGE_PORT,
    HARD_LIMIT_FACTOR,
    MAX_FRAME_BYTES,
    ChatChunkData,
    ChatChunkMessage,
    ChatForwardData,
    ChatForwardMessage,
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
    TaskCancelData,
    TaskCancelMessage,
    TaskEventMessage,
    TaskExecuteData,
    TaskExecuteMessage,
    TaskResultMessage,
    agent_code,
    encode,
    error_frame,
    parse_frame,
)

from .identities import AgentIdentity, IdentityError, Identities, IdentitySource, refusal_of

logger = logging.getLogger("lmstudio_hub.hub")

MAX_ERROR_CHARS = 2000


@dataclass(frozen=True)
class AgentInfo:
    """A snapshot of one registered agent."""

    agent_id: str
    model: str
    capabilities: tuple[str, ...]
    tools: tuple[str, ...]
    max_concurrency: int
    active: int


@dataclass
class HubStats:
    """Counters since start (tests and the benchmark read them)."""

    submitted: int = 0
    completed: int = 0
    failed: int = 0
    requeued: int = 0
    duplicates_dropped: int = 0
    rejected_busy: int = 0
    rejected_no_agent: int = 0
    protocol_errors: int = 0


@dataclass(eq=False)
class _Agent:
    agent_id: str
    conn: ServerConnection
    model: str
    capabilities: tuple[str, ...]
    tools: frozenset[str]
    side_effect_tools: frozenset[str]
    max_concurrency: int
    identity: AgentIdentity | None = None
    active: dict[str, _Task] = field(default_factory=dict)

    def can_run(self, tools: tuple[str, ...], model: str) -> bool:
        return (not model or model == self.model) and self.tools.issuperset(tools)

    @property
    def free(self) -> int:
        return self.max_concurrency - len(self.active)


@dataclass(eq=False)
class _Chat:
    """A pass-through on its way: the agent that has it and what it sent back so far."""

    agent: _Agent
    answers: asyncio.Queue[ChatChunkData | ChatResultData | AgentError] = field(default_factory=asyncio.Queue)


@dataclass(eq=False)
class _Task:
    task_id: str
    instruction: str
    tools: tuple[str, ...]
    model: str
    future: asyncio.Future[list[AgentMessage]]
    deadline: Deadline
    documents: dict[str, str] | None = None
    attempts: int = 0
    agent: _Agent | None = None
    queued: bool = False
    tried: set[str] = field(default_factory=set)
    sent_to: set[_Agent] = field(default_factory=set)  # the connections that had an attempt: never again
    failures: list[str] = field(default_factory=list)
    timed_out: bool = False
    timer: asyncio.TimerHandle | None = None
    on_event: Callable[[RunEvent], None] | None = None


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
        self._source = identities if isinstance(identities, IdentitySource) else None
        if self._source is not None:
            if token and not self._source.shared_token:
                self._source.shared_token = token
            loaded = self._source.load()
        else:
            loaded = identities if isinstance(identities, Identities) else Identities()
            if token:
                loaded = Identities(loaded.agents, token)
        if loaded.empty:
            raise ValueError("the bridge hub needs agent identities (BRIDGE_AGENTS_FILE, BRIDGE_AGENTS) or a shared token (BRIDGE_TOKEN)")
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        self._identities = loaded
        self.identity_poll_seconds = identity_poll_seconds
        self._watch: asyncio.Task[None] | None = None
        self.default_model = default_model
        self.max_attempts = max_attempts
        self.task_timeout = task_timeout
        self.default_deadline = default_deadline
        self.max_queue = max_queue
        self.max_agent_concurrency = max_agent_concurrency
        self.ping_interval = ping_interval
        self.ping_timeout = ping_timeout
        self.close_timeout = close_timeout
        self.register_timeout = register_timeout
        self.max_frame_bytes = max_frame_bytes
        self.retry_after_seconds = retry_after_seconds
        self.stats = HubStats()
        self._remember = remember_finished
        self._agents: dict[str, _Agent] = {}
        self._tasks: dict[str, _Task] = {}
        self._queue: deque[_Task] = deque()
        self._finished: OrderedDict[str, None] = OrderedDict()
        self._known_tools: set[str] = set()
        self._known_side_effect_tools: set[str] = set()
        self._sends: set[asyncio.Task[None]] = set()
        self._chats: dict[str, _Chat] = {}
        self._server: Server | None = None
        self._serving = False

    # ------------------------------------------------------------------------------------- lifecycle

    async def start(self, host: str = "127.0.0.1", port: int = DEFAULT_BRIDGE_PORT) -> None:
        """Listen for agents on ``host:port`` (port 0: any free port, see :attr:`port`)."""
        self._server = await serve(
            self._handle,
            host,
            port,
            process_request=self._authorize,
            ping_interval=self.ping_interval,
            ping_timeout=self.ping_timeout,
            max_size=self.max_frame_bytes * HARD_LIMIT_FACTOR,
            compression=None,  # small JSON frames on a LAN or loopback: deflate costs more than it saves
            open_timeout=10,
            close_timeout=self.close_timeout,
        )
        self._serving = True
        if self._source is not None and self._source.agents_file is not None:
            self._watch = asyncio.ensure_future(self._watch_identities())
        logger.info("bridge hub listening on ws://%s:%s", host, self.port)

    async def stop(self) -> None:
        """Fail what is pending (NO_AGENT_AVAILABLE: the hub is going away), close every connection."""
        self._serving = False
        if self._watch is not None:
            self._watch.cancel()
            self._watch = None
        for task in list(self._tasks.values()):
            self._fail(task, AgentError(ErrorCode.NO_AGENT_AVAILABLE, "The bridge hub is shutting down"))
        for chat in self._chats.values():
            chat.answers.put_nowait(AgentError(ErrorCode.NO_AGENT_AVAILABLE, "The bridge hub is shutting down"))
        if self._server is not None:
            self._server.close(close_connections=True)
            await self._server.wait_closed()
            self._server = None
        for send in list(self._sends):
            send.cancel()
        logger.info("bridge hub stopped")

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the hub is not started")
        return int(self._server.sockets[0].getsockname()[1])

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    @property
    def serving(self) -> bool:
        return self._serving

    # ----------------------------------------------------------------------------------- inspection

    def agents(self) -> list[AgentInfo]:
        return [
            AgentInfo(a.agent_id, a.model, a.capabilities, tuple(sorted(a.tools)), a.max_concurrency, len(a.active))
            for a in self._agents.values()
        ]

    @property
    def known_tools(self) -> frozenset[str]:
        """Every tool an agent has registered since the hub started (connected or not)."""
        return frozenset(self._known_tools)

    def connected_tools(self) -> frozenset[str]:
        return frozenset().union(*(a.tools for a in self._agents.values()))

    def has_side_effects(self, tools: Iterable[str]) -> bool:
        """Whether any of ``tools`` (none named: any tool at all) is marked as having side effects by an agent."""
        names = set(tools)
        return bool(self._known_side_effect_tools & names) if names else bool(self._known_side_effect_tools)

    @property
    def queued(self) -> int:
        return len(self._queue)

    def owner_of(self, tools: Iterable[str]) -> str:
        """Who may serve a task naming ``tools`` (the agent identities allowed all of them): the cache keys
        answers by it, so an agent's answers are only ever served for tasks that agent may run."""
        return ",".join(self._identities.owners_of(tools))

    # ------------------------------------------------------------------------------------ identities

    @property
    def identities(self) -> Identities:
        return self._identities

    def reload_identities(self) -> bool:
        """Read the identity source again and apply it (see :meth:`set_identities`). A malformed list is
        logged and ignored: the hub keeps the list it has. Returns whether the new list was applied."""
        if self._source is None:
            return False
        try:
            identities = self._source.load()
        except IdentityError as exc:
            logger.error("agent identities not reloaded, keeping the current ones: %s", exc)
            return False
        if identities.empty:
            logger.error("agent identities not reloaded: the new list admits no agent")
            return False
        self.set_identities(identities)
        return True

    def set_identities(self, identities: Identities) -> list[str]:
        """Admit ``identities`` from now on; close the connection of every agent that is no longer admitted as
        it authenticated (revoked, token changed, or a registered tool no longer allowed). Returns their ids."""
        self._identities = identities
        revoked = []
        for agent in list(self._agents.values()):
            identity = agent.identity
            if identity is None:
                continue
            still = identities.current(identity)
            if still:
                current = identities.get(identity.agent_id) if identity.agent_id else identities.shared()
                still = current is not None and current.may_offer(agent.tools)
            if not still:
                revoked.append(agent.agent_id)
                logger.warning("agent %s: its identity was revoked or changed; closing its connection", agent.agent_id)
                self._close_soon(agent)
        logger.info("agent identities applied: %d agent(s)%s", len(identities.agents),
                    ", and the shared token" if identities.shared_token else "")
        return revoked

    def _close_soon(self, agent: _Agent) -> None:
        close = asyncio.get_running_loop().create_task(agent.conn.close(CloseCode.POLICY_VIOLATION, "agent revoked"))
        self._sends.add(close)
        close.add_done_callback(self._sends.discard)

    async def _watch_identities(self) -> None:
        """Re-read the agents file whenever its mtime or size changes (SIGHUP reloads at once: see the CLI)."""
        assert self._source is not None
        stamp = self._source.stamp()
        while True:
            await asyncio.sleep(self.identity_poll_seconds)
            now = self._source.stamp()
            if now != stamp:
                stamp = now
                self.reload_identities()

    def _identify(self, headers: Iterable[tuple[str, str]]) -> AgentIdentity | None:
        try:
            key = presented_key(headers)
        except AgentError:
            return None
        return self._identities.authenticate(key) if key else None

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
        if not self._serving:
            raise AgentError(ErrorCode.NO_AGENT_AVAILABLE, "The bridge hub is not running")
        names = tuple(dict.fromkeys(tools))
        model = model or self.default_model
        deadline = deadline or Deadline(self.default_deadline)
        if not any(agent.can_run(names, model) for agent in self._agents.values()):
            self.stats.rejected_no_agent += 1
            raise AgentError(
                ErrorCode.NO_AGENT_AVAILABLE,
                self._no_agent_message(names, model),
                details={"retry_after": self.retry_after_seconds},
            )
        loop = asyncio.get_running_loop()
        task = _Task(uuid.uuid4().hex, instruction, names, model, loop.create_future(), deadline,
                     documents=dict(documents) if documents else None, on_event=on_event)
        agent = self._pick(task)
        if agent is None and len(self._queue) >= self.max_queue:
            self.stats.rejected_busy += 1
            raise AgentError(
                ErrorCode.HUB_BUSY,
                f"Every agent that can run this task is at its concurrency limit and the hub's queue is full "
                f"({self.max_queue} waiting); retry after {self.retry_after_seconds}s",
                details={"retry_after": self.retry_after_seconds},
            )
        self.stats.submitted += 1
        self._tasks[task.task_id] = task
        if agent is not None:
            self._assign(task, agent)
        else:
            task.queued = True
            self._queue.append(task)
        try:
            async with asyncio.timeout(deadline.remaining()):
                return await task.future
        except TimeoutError:
            raise self._deadline_error(task) from None
        finally:
            self._finish(task)

    # ---------------------------------------------------------------------------------- pass-through

    def chat_models(self) -> list[str]:
        """The models a connected agent passes chat requests through to (it registered ``chat:forward``)."""
        return sorted({a.model for a in self._agents.values() if CHAT_FORWARD in a.capabilities and a.model})

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
        model = str(body.get("model") or "")
        agents = [a for a in self._agents.values() if CHAT_FORWARD in a.capabilities and a.model == model]
        if not self._serving or not agents:
            raise AgentError(ErrorCode.NO_AGENT_AVAILABLE, f"No connected agent passes requests to the model {model!r}",
                             details={"retry_after": self.retry_after_seconds})
        agent = max(agents, key=lambda a: a.free)
        request_id = uuid.uuid4().hex
        frame = ChatForwardMessage(data=ChatForwardData(request_id=request_id, body=body,
                                                        deadline_seconds=max(0.1, deadline.clamp(900.0))))
        chat = _Chat(agent)
        self._chats[request_id] = chat
        self._send_soon(agent, encode(frame))
        try:
            first = await self._next_answer(chat, deadline)
        except BaseException:
            self._chats.pop(request_id, None)
            raise
        if isinstance(first, ChatResultData) or not stream:
            self._chats.pop(request_id, None)
            return self._chat_result(first)
        return self._chat_events(request_id, chat, first, deadline)

    async def _next_answer(self, chat: _Chat, deadline: Deadline) -> ChatChunkData | ChatResultData:
        try:
            async with asyncio.timeout(deadline.remaining()):
                answer = await chat.answers.get()
        except TimeoutError:
            raise AgentError(ErrorCode.UPSTREAM_TIMEOUT, "The agent's model did not answer within the deadline") from None
        if isinstance(answer, AgentError):
            raise answer
        return answer

    @staticmethod
    def _chat_result(answer: ChatChunkData | ChatResultData) -> dict[str, Any]:
        if isinstance(answer, ChatChunkData):  # a stream for a request that asked for none: a broken agent
            raise AgentError(ErrorCode.UPSTREAM_ERROR, "The agent streamed an answer that was asked for whole")
        if answer.status == "error":
            raise AgentError(agent_code(answer.code), (answer.error or "")[:MAX_ERROR_CHARS])
        if answer.body is None:
            raise AgentError(ErrorCode.UPSTREAM_ERROR, "The agent's answer has no body")
        return answer.body

    async def _chat_events(self, request_id: str, chat: _Chat, first: ChatChunkData,
                           deadline: Deadline) -> AsyncIterator[bytes]:
        """The stream's events; a failure once it has started is an OpenAI ``{"error": ...}`` event."""
        answer: ChatChunkData | ChatResultData = first
        try:
            while isinstance(answer, ChatChunkData):
                yield b"data: " + answer.data.encode() + b"\n\n"
                answer = await self._next_answer(chat, deadline)
            if answer.status == "error":
                raise AgentError(agent_code(answer.code), (answer.error or "")[:MAX_ERROR_CHARS])
        except AgentError as exc:
            error = {"error": {"message": exc.message, "type": "server_error", "param": None, "code": exc.code.value}}
            yield b"data: " + json.dumps(error).encode() + b"\n\n"
        finally:
            self._chats.pop(request_id, None)
        yield b"data: [DONE]\n\n"

    def _on_chat(self, agent: _Agent, data: ChatChunkData | ChatResultData, kind: str) -> str | None:
        chat = self._chats.get(data.request_id)
        if chat is None or chat.agent is not agent:
            self.stats.protocol_errors += 1
            return error_frame(ErrorCode.NOT_FOUND, f"Unknown request_id {data.request_id!r}", message_type=kind)
        chat.answers.put_nowait(data)
        return None

    # -------------------------------------------------------------------------------------- dispatch

    def _pick(self, task: _Task) -> _Agent | None:
        """The least loaded agent that can run the task and has a free slot, preferring untried agents.

        A connection that already had an attempt never gets the task again (it timed out, dropped its result
        or sent a bad one): a retry waits for another agent, until the deadline. An agent that reconnects
        is a new connection and may take it.
        """
        best: _Agent | None = None
        best_key: tuple[bool, int] | None = None
        for agent in self._agents.values():
            if agent.free <= 0 or agent in task.sent_to or not agent.can_run(task.tools, task.model):
                continue
            key = (agent.agent_id not in task.tried, agent.free)
            if best_key is None or key > best_key:
                best, best_key = agent, key
        return best

    def _assign(self, task: _Task, agent: _Agent) -> None:
        task.attempts += 1
        task.agent = agent
        task.queued = False
        task.tried.add(agent.agent_id)
        task.sent_to.add(agent)
        agent.active[task.task_id] = task
        left = task.deadline.remaining()
        # When the caller's deadline comes first, it ends the task (and cancels the attempt): no retry then.
        if left is None or self.task_timeout < left:
            task.timer = asyncio.get_running_loop().call_later(
                self.task_timeout, self._on_attempt_timeout, task, agent, task.attempts, self.task_timeout
            )
        frame = TaskExecuteMessage(
            data=TaskExecuteData(task_id=task.task_id, instruction=task.instruction, tools=list(task.tools),
                                 documents=task.documents, stream=True if task.on_event is not None else None)
        )
        self._send_soon(agent, encode(frame))

    def _release(self, task: _Task, *, cancel: str | None = None) -> None:
        """Take the task off its agent (telling the agent to stop when ``cancel`` gives a reason)."""
        agent = task.agent
        if task.timer is not None:
            task.timer.cancel()
            task.timer = None
        if agent is None:
            return
        task.agent = None
        agent.active.pop(task.task_id, None)
        if cancel is not None:
            self._send_soon(agent, encode(TaskCancelMessage(data=TaskCancelData(task_id=task.task_id, reason=cancel))))

    def _retry(self, task: _Task, reason: str, *, timed_out: bool = False) -> None:
        """A failed attempt: dispatch again (another agent first) or, when attempts are spent, fail."""
        task.failures.append(reason)
        task.timed_out = timed_out
        if task.future.done():
            return
        if task.attempts >= self.max_attempts or task.deadline.expired or not self._serving:
            code = ErrorCode.UPSTREAM_TIMEOUT if timed_out else ErrorCode.UPSTREAM_ERROR
            self._fail(
                task,
                AgentError(code, f"No agent finished the task after {task.attempts} attempt(s): {'; '.join(task.failures)}"),
            )
            return
        self.stats.requeued += 1
        agent = self._pick(task)
        if agent is not None:
            self._assign(task, agent)
        else:
            task.queued = True
            self._queue.appendleft(task)  # it is older than anything queued behind it

    def _drain(self) -> None:
        """Dispatch queued tasks, oldest first, while agents have free slots."""
        if not self._queue:
            return
        waiting: deque[_Task] = deque()
        while self._queue:
            if not any(agent.free > 0 for agent in self._agents.values()):
                break
            task = self._queue.popleft()
            if task.future.done():
                task.queued = False
                continue
            agent = self._pick(task)
            if agent is None:
                waiting.append(task)
            else:
                self._assign(task, agent)
        waiting.extend(self._queue)
        self._queue = waiting

    def _fail(self, task: _Task, error: AgentError) -> None:
        if not task.future.done():
            self.stats.failed += 1
            task.future.set_exception(error)

    def _finish(self, task: _Task) -> None:
        """The caller has its answer (or gave up): forget the task, free its slot, remember its id."""
        self._tasks.pop(task.task_id, None)
        if task.queued:
            task.queued = False
            try:
                self._queue.remove(task)
            except ValueError:
                pass
        if task.agent is not None:
            self._release(task, cancel="the caller stopped waiting")
            self._drain()
        elif task.timer is not None:
            task.timer.cancel()
        self._finished[task.task_id] = None
        while len(self._finished) > self._remember:
            self._finished.popitem(last=False)

    def _on_attempt_timeout(self, task: _Task, agent: _Agent, attempt: int, seconds: float) -> None:
        if task.future.done() or task.agent is not agent or task.attempts != attempt:
            return
        task.timer = None
        logger.warning("agent %s gave no result for task %s within %.3gs; requeueing", agent.agent_id, task.task_id, seconds)
        self._release(task, cancel=f"no result within {seconds:g}s")
        self._retry(task, f"agent {agent.agent_id!r} gave no result within {seconds:g}s", timed_out=True)
        self._drain()

    def _deadline_error(self, task: _Task) -> AgentError:
        seconds = task.deadline.seconds or 0.0
        if task.agent is not None:
            return AgentError(
                ErrorCode.UPSTREAM_TIMEOUT,
                f"Agent {task.agent.agent_id!r} did not finish the task within the deadline of {seconds:g}s",
            )
        if task.failures:
            code = ErrorCode.UPSTREAM_TIMEOUT if task.timed_out else ErrorCode.UPSTREAM_ERROR
            return AgentError(
                code,
                f"No other agent was free to retry the task within the deadline of {seconds:g}s, after "
                f"{task.attempts} attempt(s): {'; '.join(task.failures)}",
            )
        if any(agent.can_run(task.tools, task.model) for agent in self._agents.values()):
            self.stats.rejected_busy += 1
            return AgentError(
                ErrorCode.HUB_BUSY,
                f"Every agent that can run this task stayed at its concurrency limit for {seconds:g}s",
                details={"retry_after": self.retry_after_seconds},
            )
        self.stats.rejected_no_agent += 1
        why = f" (after: {'; '.join(task.failures)})" if task.failures else ""
        return AgentError(
            ErrorCode.NO_AGENT_AVAILABLE,
            f"{self._no_agent_message(task.tools, task.model)} within the deadline of {seconds:g}s{why}",
            details={"retry_after": self.retry_after_seconds},
        )

    def _no_agent_message(self, tools: tuple[str, ...], model: str) -> str:
        wants = f"model {model!r}" if model else "any model"
        if tools:
            wants += f" and tools {', '.join(tools)}"
        return f"No connected agent has {wants} ({len(self._agents)} agent(s) connected)"

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
            elif self._identities.authenticate(key) is None:
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
        identity = self._identify(conn.request.headers.raw_items()) if conn.request is not None else None
        if identity is None:  # revoked between the handshake and now
            await conn.close(CloseCode.POLICY_VIOLATION, "agent revoked")
            return
        agent = await self._register(conn, identity)
        if agent is None:
            return
        try:
            await conn.send(encode(RegistrationSuccessMessage(data=RegistrationSuccessData(agent_id=agent.agent_id))))
            self._drain()
            async for raw in conn:
                reply = self._on_frame(agent, raw)
                if reply is not None:
                    await conn.send(reply)
        except ConnectionClosed:
            pass
        finally:
            self._on_disconnect(agent, conn)

    async def _register(self, conn: ServerConnection, identity: AgentIdentity) -> _Agent | None:
        """Wait for a valid ``agent:register``; answer bad frames with errors until ``register_timeout``."""
        loop = asyncio.get_running_loop()
        give_up_at = loop.time() + self.register_timeout
        try:
            while True:
                try:
                    async with asyncio.timeout_at(give_up_at):
                        raw = await conn.recv()
                except TimeoutError:
                    message = f"No agent:register within {self.register_timeout:g}s"
                    await conn.send(_registration_error(None, ErrorCode.INVALID_REQUEST, message))
                    await conn.close(CloseCode.POLICY_VIOLATION, "registration timeout")
                    return None
                try:
                    msg = parse_frame(raw, max_bytes=self.max_frame_bytes)
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

    async def _admit(self, conn: ServerConnection, data: RegisterData, identity: AgentIdentity) -> _Agent | None:
        if not self._serving:
            await conn.send(_registration_error(data.agent_id, ErrorCode.NO_AGENT_AVAILABLE, "The hub is shutting down"))
            await conn.close(CloseCode.GOING_AWAY, "hub shutting down")
            return None
        refusal = refusal_of(identity, data.agent_id, data.tools)
        if refusal is not None:
            logger.warning("refused a registration from %s: %s", conn.remote_address, refusal)
            await conn.send(_registration_error(data.agent_id, ErrorCode.FORBIDDEN, refusal))
            await conn.close(CloseCode.POLICY_VIOLATION, "registration not allowed")
            return None
        if data.agent_id in self._agents:
            logger.warning("refused a second connection for agent_id %r from %s", data.agent_id, conn.remote_address)
            message = f"agent_id {data.agent_id!r} is already connected to this hub from another connection"
            await conn.send(_registration_error(data.agent_id, ErrorCode.FORBIDDEN, message))
            await conn.close(CloseCode.POLICY_VIOLATION, "agent_id in use")
            return None
        agent = _Agent(
            agent_id=data.agent_id,
            conn=conn,
            model=data.model,
            capabilities=tuple(data.capabilities),
            tools=frozenset(data.tools),
            side_effect_tools=frozenset(data.side_effect_tools),
            max_concurrency=min(data.max_concurrency, self.max_agent_concurrency),
            identity=identity,
        )
        self._agents[agent.agent_id] = agent
        self._known_tools.update(agent.tools)
        self._known_side_effect_tools.update(agent.side_effect_tools)
        logger.info(
            "agent %s registered from %s: model %s, %d tool(s), concurrency %d",
            agent.agent_id, conn.remote_address, agent.model, len(agent.tools), agent.max_concurrency,
        )
        return agent

    def _on_disconnect(self, agent: _Agent, conn: ServerConnection) -> None:
        if self._agents.get(agent.agent_id) is agent:
            del self._agents[agent.agent_id]
        reason = f"code {conn.close_code}" if conn.close_code is not None else "connection lost"
        if conn.close_reason:
            reason += f": {conn.close_reason}"
        logger.info("agent %s disconnected (%s); %d task(s) to requeue", agent.agent_id, reason, len(agent.active))
        for task in list(agent.active.values()):
            self._release(task)
            self._retry(task, f"agent {agent.agent_id!r} disconnected ({reason})")
        for chat in self._chats.values():
            if chat.agent is agent:
                chat.answers.put_nowait(AgentError(ErrorCode.CONNECTION_FAILED,
                                                   f"The agent {agent.agent_id!r} disconnected ({reason})"))
        self._drain()

    def _on_frame(self, agent: _Agent, raw: str | bytes) -> str | None:
        """Handle one frame from a registered agent; the returned text, if any, is sent back to it."""
        try:
            msg = parse_frame(raw, max_bytes=self.max_frame_bytes)
        except AgentError as exc:
            self.stats.protocol_errors += 1
            kind, task_id = exc.details.get("type"), exc.details.get("task_id")
            logger.warning("agent %s sent a bad frame: %s", agent.agent_id, exc.message)
            task = self._tasks.get(task_id) if kind == "task:result" and task_id else None
            if task is not None and task.agent is agent:
                self._release(task)
                self._retry(task, f"agent {agent.agent_id!r} sent an invalid result")
                self._drain()
            return error_frame(exc.code, exc.message, task_id=task_id, message_type=kind)
        if isinstance(msg, TaskResultMessage):
            return self._on_result(agent, msg)
        if isinstance(msg, (ChatChunkMessage, ChatResultMessage)):
            return self._on_chat(agent, msg.data, msg.type)
        if isinstance(msg, TaskEventMessage):
            task = self._tasks.get(msg.data.task_id)
            # Only the attempt that holds the task streams: events of a dropped attempt are stale.
            if task is not None and task.agent is agent and task.on_event is not None and not task.future.done():
                try:
                    task.on_event(msg.data.event)
                except Exception:
                    logger.warning("a task's event listener raised; the task goes on", exc_info=True)
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

    def _on_result(self, agent: _Agent, msg: TaskResultMessage) -> str | None:
        data = msg.data
        task = self._tasks.get(data.task_id)
        if task is None and data.task_id in self._finished:
            self.stats.duplicates_dropped += 1
            logger.debug("dropped a late result for finished task %s from %s", data.task_id, agent.agent_id)
            return None
        if task is None or agent.agent_id not in task.tried:
            self.stats.protocol_errors += 1
            logger.warning("agent %s sent a result for unknown task %r", agent.agent_id, data.task_id[:64])
            return error_frame(
                ErrorCode.NOT_FOUND, f"Unknown task_id {data.task_id!r}", task_id=data.task_id, message_type=msg.type
            )
        if task.future.done():
            self.stats.duplicates_dropped += 1
            return None
        # The first result wins, even one from an earlier attempt: stop whichever attempt is still running.
        if task.agent is agent:
            self._release(task)
        elif task.agent is not None:
            self._release(task, cancel="another agent answered first")
        elif task.queued:
            task.queued = False
            self._queue.remove(task)
        if data.status == "success":
            self.stats.completed += 1
            task.future.set_result(list(data.result or []))
        else:
            self._fail(task, AgentError(agent_code(data.code), (data.error or "")[:MAX_ERROR_CHARS]))
        self._drain()
        return None

    # ------------------------------------------------------------------------------------------ sends

    def _send_soon(self, agent: _Agent, text: str) -> None:
        send = asyncio.get_running_loop().create_task(self._send(agent, text))
        self._sends.add(send)
        send.add_done_callback(self._sends.discard)

    async def _send(self, agent: _Agent, text: str) -> None:
        try:
            await agent.conn.send(text)
        except ConnectionClosed:
            pass  # the connection's handler requeues whatever the agent held


def _registration_error(agent_id: str | None, code: ErrorCode, message: str) -> str:
    return encode(RegistrationErrorMessage(data=RegistrationErrorData(agent_id=agent_id, error=message, code=code)))
