"""The bridge without a server: what the serverless hubs (a Durable Object per agent on Workers, API Gateway
WebSocket routes on Lambda) share, so each holds only its platform's plumbing.

A serverless hub has no process that lives as long as an agent's connection. Each event (a frame from an
agent, a client's ``/execute``) runs on its own, so the hub's state lives in a *directory* (who is online,
with which tools) and in the platform's per-connection state, and the frames are answered one at a time:

- :func:`on_agent_frame` decides what one frame from an agent means (the protocol, the identity rules of
  :mod:`~lmstudio_agent.bridge.identities`) and what to answer; the platform sends the answer and keeps the
  registration (a socket attachment, a DynamoDB row). It and the frames a hub answers live in
  :mod:`.relay_frames` and are importable from here.
- :class:`RelayBackend` is the contract's :class:`~lmstudio_agent.endpoint.contract.ExecuteBackend` over a
  :class:`Relay` (the platform's directory and its way of handing one task to one agent): it picks an agent
  that offers the tools, and gives the task to another when its agent is lost before answering
  (:class:`AgentLost`), so a task is never silently dropped; the first result is the answer.

Nothing here imports websockets or a cloud SDK: the Worker's bundle carries this module.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
import uuid
from typing import Any, Protocol
from collections.abc import AsyncIterator, Iterable, Sequence

from pydantic import BaseModel, ConfigDict, Field

from ..endpoint.contract import ToolSelection
from ..deadline import Deadline
from ..errors import AgentError, ErrorCode
from ..agent.events import RunEvent, events_from_transcript
from ..agent.messages import AgentMessage
from .identities import Identities
from .protocol import RegisterData, TaskExecuteData, TaskResultData, agent_code
from .relay_frames import HEARTBEAT_ACK_FRAME as HEARTBEAT_ACK_FRAME
from .relay_frames import HEARTBEAT_FRAME as HEARTBEAT_FRAME
from .relay_frames import FrameOutcome as FrameOutcome
from .relay_frames import already_connected as already_connected
from .relay_frames import on_agent_frame as on_agent_frame
from .relay_frames import registration_error as registration_error
from .relay_frames import registration_success as registration_success
from .relay_frames import task_frame as task_frame

MAX_ERROR_CHARS = 2000
# How long a task waits, in all, for a free agent when every one that offers its tools is at its limit.
BUSY_BACKOFF = (0.05, 0.5)


class DirectoryEntry(BaseModel):
    """One online agent as the directory lists it: what ``agent:register`` said, and where it is reached.

    Args:
        agent_id: The agent's registered id.
        model: The model it runs.
        tools: The tools it offers.
        side_effect_tools: Which of ``tools`` have side effects (answers using them are never cached).
        max_concurrency: How many tasks it runs at once.
        connection: The platform's id of the agent's connection.
        registered_at: When it registered (seconds since the epoch).
    """

    model_config = ConfigDict(extra="ignore")

    agent_id: str
    model: str
    tools: list[str] = Field(default_factory=list)
    side_effect_tools: list[str] = Field(default_factory=list)
    max_concurrency: int = 1
    connection: str = Field(default="", description="The platform's id of the agent's connection.")
    registered_at: float = 0.0

    @classmethod
    def of(cls, data: RegisterData, connection: str = "", now: float | None = None) -> DirectoryEntry:
        """The entry of a registration.

        Args:
            data: The agent's ``agent:register`` payload.
            connection: The platform's id of its connection.
            now: The registration time (default: now).
        """
        return cls(agent_id=data.agent_id, model=data.model, tools=list(data.tools),
                   side_effect_tools=list(data.side_effect_tools), max_concurrency=data.max_concurrency,
                   connection=connection, registered_at=time.time() if now is None else now)

    def can_run(self, tools: Iterable[str], model: str) -> bool:
        """Whether this agent offers every one of ``tools`` and runs ``model``.

        Args:
            tools: The tools the task uses.
            model: The model the task asks for (empty: any).
        """
        return (not model or model == self.model) and set(self.tools).issuperset(tools)


class AgentLost(Exception):
    """The agent went away (its socket closed, its connection is gone) before it answered the task."""


class AgentBusy(Exception):
    """The agent already runs as many tasks as it registered for."""


class Relay(Protocol):
    """The platform's side of :class:`RelayBackend`."""

    async def agents(self) -> Sequence[DirectoryEntry]:
        """The agents online now."""
        ...

    async def dispatch(self, agent: DirectoryEntry, task: TaskExecuteData, timeout: float) -> TaskResultData:
        """Hand ``task`` to ``agent`` and return its ``task:result``; an UPSTREAM_TIMEOUT error result when it
        gives none within ``timeout`` seconds. Raises AgentLost or AgentBusy.

        Args:
            agent: The agent to run the task.
            task: The task.
            timeout: How long to wait for the result, in seconds.
        """
        ...


class StreamingRelay(Relay, Protocol):
    """A relay that can also pass a task's ``task:event`` frames on as they come (the Worker's)."""

    def dispatch_stream(self, agent: DirectoryEntry, task: TaskExecuteData,
                        timeout: float) -> AsyncIterator[RunEvent | TaskResultData]:
        """As :meth:`Relay.dispatch` for a task sent with ``stream: true``: its events, then its result.

        Args:
            agent: The agent to run the task.
            task: The task (with ``stream: true``).
            timeout: How long to wait for the result, in seconds.
        """
        ...


# ----------------------------------------------------------------------------------------- results


def lost_result(task_id: str, why: str) -> TaskResultData:
    """An error result standing for a task whose agent is gone (the relay turns it into AgentLost).

    Args:
        task_id: The task.
        why: What happened.
    """
    return TaskResultData(task_id=task_id, status="error", error=why, code=LOST_CODE)


LOST_CODE = "AGENT_LOST"  # never sent by an agent; marks a relay's answer "the agent went away"
BUSY_CODE = "AGENT_BUSY"  # likewise: "the agent is at its limit"


def timeout_result(task_id: str, agent_id: str, seconds: float) -> TaskResultData:
    """The UPSTREAM_TIMEOUT result of a task its agent did not answer in time.

    Args:
        task_id: The task.
        agent_id: Its agent.
        seconds: How long it waited.
    """
    return TaskResultData(task_id=task_id, status="error", code=ErrorCode.UPSTREAM_TIMEOUT.value,
                          error=f"Agent {agent_id!r} did not answer the task within {seconds:.3g}s")


# ----------------------------------------------------------------------------------------- backend


class RelayBackend:
    """The contract's execute backend over a :class:`Relay`: the tools are those the online agents offer.

    Args:
        relay: The platform's directory and dispatch.
        identities: The admitted agents (the cache keys answers by who may serve them).
        default_model: The model of a task that names none (empty: any agent).
        max_attempts: The most agents one task is handed to.
        scope: The cache scope of this deployment's answers.
    """

    def __init__(self, relay: Relay, *, identities: Identities, default_model: str = "", max_attempts: int = 3,
                 scope: str = "bridge-relay") -> None:
        """Keep the configuration; the directory is first read by :meth:`start`."""
        self.relay = relay
        self.identities = identities
        self._default_model = default_model
        self.max_attempts = max_attempts
        self._scope = scope
        self._online: list[DirectoryEntry] | None = None

    @property
    def default_model(self) -> str:
        """The model of a task that names none (empty: any agent's)."""
        return self._default_model

    def cache_scope(self) -> str:
        """The cache scope of this deployment's answers (part of every cache key)."""
        return self._scope

    async def start(self) -> None:
        """Read the directory (the contract awaits this before selecting tools)."""
        self._online = list(await self.relay.agents())

    def select_tools(self, names: list[str]) -> ToolSelection:
        """The selection for ``names``, from the agents online at :meth:`start`.

        Its ``owner`` lists the identities allowed to offer these tools, so a cached answer is only served for
        tasks the same agents may serve. Raises AgentError: NO_AGENT_AVAILABLE when no agent is online,
        UNKNOWN_TOOL for a tool none of them offers.

        Args:
            names: The tool names the request asked for (empty: any).
        """
        online = self._online or []
        if not online:
            raise AgentError(ErrorCode.NO_AGENT_AVAILABLE, "No agent is connected to the hub",
                             details={"retry_after": 1})
        names = list(dict.fromkeys(names))
        offered = set().union(*(set(a.tools) for a in online))
        unknown = [name for name in names if name not in offered]
        if unknown:
            raise AgentError(ErrorCode.UNKNOWN_TOOL, f"Unknown tool(s): {', '.join(unknown)}; the connected agents "
                                                     f"offer: {', '.join(sorted(offered)) or 'none'}")
        side = set().union(*(set(a.side_effect_tools) for a in online))
        effects = bool(side & set(names)) if names else bool(side)
        return ToolSelection(tuple(names), effects, owner=",".join(self.identities.owners_of(names)))

    async def _candidates(self, tools: ToolSelection, model: str) -> list[DirectoryEntry]:
        online = self._online if self._online is not None else list(await self.relay.agents())
        candidates = [a for a in online if a.can_run(tools.names, model)]
        if not candidates:
            wants = f"model {model!r}" if model else "any model"
            raise AgentError(ErrorCode.NO_AGENT_AVAILABLE, f"No connected agent has {wants} and tools "
                                                           f"{', '.join(tools.names) or '(any)'}",
                             details={"retry_after": 1})
        random.shuffle(candidates)
        return candidates

    async def stream(self, instruction: str, tools: ToolSelection, model: str, deadline: Deadline,
                     documents: dict[str, str] | None = None) -> AsyncIterator[RunEvent]:
        """The agent's events as its ``task:event`` frames arrive, where the relay passes them on (else the
        transcript's, at the end). A task lost before its first event goes to the next agent; one lost after
        it fails (its client has seen part of a run), with UPSTREAM_ERROR.

        Args:
            instruction: What the agent should do.
            tools: The tools the run may use (:meth:`select_tools`).
            model: The model to run on (empty: any).
            deadline: The run's deadline.
            documents: The request's long inputs, name -> text.
        """
        streaming = getattr(self.relay, "dispatch_stream", None)
        if streaming is None:
            for event in events_from_transcript(await self.run(instruction, tools, model, deadline, documents)):
                yield event
            return
        candidates = await self._candidates(tools, model)
        task = TaskExecuteData(task_id=uuid.uuid4().hex, instruction=instruction, tools=list(tools.names),
                               documents=dict(documents) if documents else None, stream=True)
        lost: list[str] = []
        while candidates:
            agent = candidates.pop(0)
            left = deadline.remaining()
            if left is not None and left <= 0:
                raise _deadline_error(deadline, lost)
            messages = 0
            result: TaskResultData | None = None
            try:
                async for item in streaming(agent, task, 60.0 if left is None else left):
                    if isinstance(item, TaskResultData):
                        result = item
                    else:
                        messages += item.type == "message"
                        yield item
            except AgentBusy:
                continue
            except AgentLost as exc:
                lost.append(f"agent {agent.agent_id!r} was lost before answering ({exc})")
                if messages or len(lost) >= self.max_attempts:
                    raise AgentError(ErrorCode.UPSTREAM_ERROR, "; ".join(lost)) from None
                continue
            if result is None:
                raise AgentError(ErrorCode.UPSTREAM_ERROR, f"agent {agent.agent_id!r} ended the stream without a result")
            if result.status != "success":
                raise AgentError(agent_code(result.code), (result.error or "")[:MAX_ERROR_CHARS])
            if messages == 0:
                for event in events_from_transcript(result.result or []):
                    yield event
            return
        if lost:
            raise AgentError(ErrorCode.UPSTREAM_ERROR, "; ".join(lost) + "; no other agent offers the tools")
        raise AgentError(ErrorCode.HUB_BUSY, "Every agent that can run this task is at its concurrency limit",
                         details={"retry_after": 1})

    async def run(self, instruction: str, tools: ToolSelection, model: str, deadline: Deadline,
                  documents: dict[str, str] | None = None) -> list[AgentMessage]:
        """Hand the task to an agent that offers the tools; to the next when one is lost or busy.

        Every agent busy: the candidates are tried again with a growing pause until the deadline, then HUB_BUSY.
        A lost agent counts as an attempt (UPSTREAM_ERROR after ``max_attempts``); an agent's error result is
        raised with its code (:func:`~lmstudio_agent.bridge.protocol.agent_code`); a deadline that passes first,
        UPSTREAM_TIMEOUT.

        Args:
            instruction: What the agent should do.
            tools: The tools the run may use (:meth:`select_tools`).
            model: The model to run on (empty: any).
            deadline: The run's deadline.
            documents: The request's long inputs, name -> text.
        """
        candidates = await self._candidates(tools, model)
        task = TaskExecuteData(task_id=uuid.uuid4().hex, instruction=instruction, tools=list(tools.names),
                               documents=dict(documents) if documents else None)
        lost: list[str] = []
        tried: set[tuple[str, str]] = set()
        pause = BUSY_BACKOFF[0]
        while True:
            for agent in list(candidates):
                left = deadline.remaining()
                if left is not None and left <= 0:
                    raise _deadline_error(deadline, lost)
                try:
                    result = await self.relay.dispatch(agent, task, 60.0 if left is None else left)
                except AgentLost as exc:
                    lost.append(f"agent {agent.agent_id!r} was lost before answering ({exc})")
                    tried.add((agent.agent_id, agent.connection))
                    if len(lost) >= self.max_attempts:
                        raise AgentError(ErrorCode.UPSTREAM_ERROR, "; ".join(lost)) from None
                    # The directory again: an agent may have come (or come back) since the task started.
                    candidates = [a for a in await self.relay.agents()
                                  if a.can_run(tools.names, model) and (a.agent_id, a.connection) not in tried]
                    random.shuffle(candidates)
                    break
                except AgentBusy:
                    continue
                if result.status == "success":
                    return list(result.result or [])
                raise AgentError(agent_code(result.code), (result.error or "")[:MAX_ERROR_CHARS])
            else:
                # Every candidate was busy: wait a little and try them again, until the deadline.
                left = deadline.remaining()
                if left is not None and left <= pause:
                    raise AgentError(ErrorCode.HUB_BUSY, "Every agent that can run this task stayed at its "
                                                         "concurrency limit", details={"retry_after": 1})
                await asyncio.sleep(pause)
                pause = min(BUSY_BACKOFF[1], pause * 2)
                continue
            if not candidates:
                raise AgentError(ErrorCode.UPSTREAM_ERROR, "; ".join(lost) + "; no other agent offers the tools")


def _deadline_error(deadline: Deadline, lost: list[str]) -> AgentError:
    why = f" ({'; '.join(lost)})" if lost else ""
    return AgentError(ErrorCode.UPSTREAM_TIMEOUT, f"No agent answered within the deadline of {deadline.seconds or 0:g}s{why}")


def relay_line(item: RunEvent | TaskResultData) -> str:
    """One line of a relayed stream (NDJSON): ``{"event": ...}`` or ``{"result": ...}``.

    Args:
        item: An event of the task, or its result.
    """
    key = "result" if isinstance(item, TaskResultData) else "event"
    return f'{{"{key}":{item.model_dump_json(exclude_none=True)}}}\n'


def parse_relay_line(line: str) -> RunEvent | TaskResultData:
    """The event or result of one :func:`relay_line` (AgentLost/AgentBusy raised for the relay's markers).

    Args:
        line: One line.
    """
    data: Any = json.loads(line)
    if "result" in data:
        return check_lost(TaskResultData.model_validate(data["result"]))
    return RunEvent.model_validate(data["event"])


def check_lost(result: TaskResultData) -> TaskResultData:
    """``result`` as the relay's caller needs it: AgentLost or AgentBusy raised for the relay's own markers.

    Args:
        result: What the platform's side answered.
    """
    if result.status == "error" and result.code == LOST_CODE:
        raise AgentLost(result.error or "lost")
    if result.status == "error" and result.code == BUSY_CODE:
        raise AgentBusy(result.error or "busy")
    return result
