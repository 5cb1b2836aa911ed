"""The tasks a bridge agent serves on a live connection to its hub: an agent task (``task:execute``) run through
the runner or the streamer, at most ``max_concurrency`` at once, its events and result sent back in frames the
hub accepts; a model pass-through (``chat:forward``) sent to the forwarder; and a lost connection's tasks
cancelled (the hub has requeued them).

:class:`~lmstudio_agent.bridge.agent_client.BridgeAgent` is built on :class:`_TaskServing`: it connects,
registers, receives the hub's frames and hands these to it. The runner's, streamer's and forwarder's types
are importable from :mod:`.agent_client` too.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from typing import Any
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence

from pydantic import TypeAdapter, ValidationError
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from ..deadline import Deadline
from ..errors import AgentError, ErrorCode
from ..agent.events import RunEvent, transcript_of
from ..agent.messages import AgentMessage
from .protocol import (
    ChatChunkData,
    ChatChunkMessage,
    ChatForwardMessage,
    ChatResultData,
    ChatResultMessage,
    RegisterData,
    TaskEventData,
    TaskEventMessage,
    TaskExecuteMessage,
    TaskResultData,
    TaskResultMessage,
    encode,
    frame_size,
)

logger = logging.getLogger("lmstudio_agent.bridge.agent")  # the agent client's log name


Runner = Callable[..., Awaitable[Sequence[AgentMessage]]]  # (instruction, tool_names[, documents])
# Streams a task's events (raising AgentError at the end of a failed run); used for ``stream: true`` tasks.
Streamer = Callable[..., AsyncIterator[RunEvent]]  # (instruction, tool_names[, documents])
# Passes an OpenAI chat-completions body to the agent's model server: ``(body, deadline, stream=...)`` -> the
# answer's JSON, or (stream) its Server-Sent Events as bytes (AgentBackend.forward_chat is one).
Forwarder = Callable[..., Awaitable[Any]]
_TRANSCRIPT: TypeAdapter[list[AgentMessage]] = TypeAdapter(list[AgentMessage])
# API Gateway takes WebSocket frames of at most 32 KB: a longer message goes as fragments of this many characters.
FRAGMENT_CHARS = 8 * 1024


class _TaskServing:
    """Runs the hub's tasks and pass-through requests; :class:`~lmstudio_agent.bridge.agent_client.BridgeAgent`
    sets these attributes up (see its arguments)."""

    runner: Runner
    streamer: Streamer | None
    forwarder: Forwarder | None
    registration: RegisterData
    max_frame_bytes: int
    send_limit: int
    tasks_done: int
    _running: dict[str, asyncio.Task[None]]
    _slots: asyncio.Semaphore

    @property
    def agent_id(self) -> str:
        """The id this agent registers under."""
        return self.registration.agent_id

    @property
    def tools(self) -> frozenset[str]:
        """The names of the tools this agent registers (and runs)."""
        return frozenset(self.registration.tools)

    async def _start_task(self, conn: ClientConnection, msg: TaskExecuteMessage) -> None:
        data = msg.data
        if data.task_id in self._running:
            logger.warning("agent %s: task %s is already running; ignoring the repeat", self.agent_id, data.task_id)
            return
        unknown = [name for name in data.tools if name not in self.tools]
        if unknown:
            registered = ", ".join(sorted(self.tools)) or "none"
            error = AgentError(
                ErrorCode.UNKNOWN_TOOL,
                f"Tool(s) {', '.join(unknown)} not registered on agent {self.agent_id!r} (registered: {registered})",
            )
            await self._send_result(conn, _error_result(data.task_id, error))
            return
        running = asyncio.get_running_loop().create_task(
            self._run_task(conn, data.task_id, data.instruction, list(data.tools), data.documents,
                           stream=bool(data.stream)))
        self._running[data.task_id] = running
        running.add_done_callback(functools.partial(self._forget, data.task_id))

    def _start_forward(self, conn: ClientConnection, msg: ChatForwardMessage) -> None:
        request_id = msg.data.request_id
        if request_id in self._running:
            logger.warning("agent %s: request %s is already running; ignoring the repeat", self.agent_id, request_id)
            return
        running = asyncio.get_running_loop().create_task(self._forward(conn, msg))
        self._running[request_id] = running
        running.add_done_callback(functools.partial(self._forget, request_id))

    async def _forward(self, conn: ClientConnection, msg: ChatForwardMessage) -> None:
        """One pass-through: the model server's answer as ``chat:result``, or its stream as ``chat:chunk``
        frames (each event's data, ``[DONE]`` left out) and then ``chat:result``."""
        data = msg.data
        request_id = data.request_id
        try:
            if self.forwarder is None:
                raise AgentError(ErrorCode.NOT_FOUND, f"Agent {self.agent_id!r} does not pass chat requests through")
            if data.body.get("model") != self.registration.model:
                raise AgentError(ErrorCode.NOT_FOUND, f"Agent {self.agent_id!r} serves the model {self.registration.model!r} only")
            deadline = Deadline(data.deadline_seconds)
            stream = data.body.get("stream") is True
            answer = await self.forwarder(data.body, deadline, stream=stream)
            if stream:
                async for event in answer:
                    lines = event.decode("utf-8", "replace").splitlines()
                    payload = "\n".join(line[5:].lstrip(" ") for line in lines if line.startswith("data:"))
                    if payload and payload.strip() != "[DONE]":
                        await self._send_text(conn, encode(ChatChunkMessage(
                            data=ChatChunkData(request_id=request_id, data=payload))))
                result = ChatResultData(request_id=request_id, status="success")
            else:
                result = ChatResultData(request_id=request_id, status="success", body=answer)
        except AgentError as exc:
            result = ChatResultData(request_id=request_id, status="error", error=exc.message, code=exc.code.value)
        except Exception:
            logger.exception("agent %s: pass-through %s failed unexpectedly", self.agent_id, request_id)
            result = ChatResultData(request_id=request_id, status="error", error="Internal error in the agent",
                                    code=ErrorCode.INTERNAL_ERROR.value)
        text = encode(ChatResultMessage(data=result))
        if frame_size(text) > self.max_frame_bytes:
            error = f"The answer exceeds the bridge's frame limit of {self.max_frame_bytes} bytes"
            text = encode(ChatResultMessage(data=ChatResultData(request_id=request_id, status="error", error=error,
                                                                 code=ErrorCode.PAYLOAD_TOO_LARGE.value)))
        await self._send_text(conn, text)

    def _forget(self, task_id: str, done: asyncio.Task[None]) -> None:
        if self._running.get(task_id) is done:
            del self._running[task_id]

    async def _stream_task(self, conn: ClientConnection, task_id: str, instruction: str, tools: list[str],
                           documents: dict[str, str] | None = None) -> list[AgentMessage]:
        """Run through the streamer, sending each event as a ``task:event`` frame; the transcript is returned."""
        assert self.streamer is not None
        events: list[RunEvent] = []
        stream = self.streamer(instruction, tools, documents) if documents else self.streamer(instruction, tools)
        async for event in stream:
            events.append(event)
            text = encode(TaskEventMessage(data=TaskEventData(task_id=task_id, event=event)))
            if frame_size(text) <= self.send_limit:
                await self._send_text(conn, text)
        return transcript_of(events)

    async def _run_task(self, conn: ClientConnection, task_id: str, instruction: str, tools: list[str],
                        documents: dict[str, str] | None = None, *, stream: bool = False) -> None:
        # The instruction itself is the client's data: only its size is logged.
        logger.info("agent %s: task %s received (%d characters, tools: %s)", self.agent_id, task_id,
                    len(instruction), ", ".join(tools) or "all")
        started = time.monotonic()
        async with self._slots:
            try:
                if stream and self.streamer is not None:
                    produced = await self._stream_task(conn, task_id, instruction, tools, documents)
                else:
                    ran = self.runner(instruction, tools, documents) if documents else self.runner(instruction, tools)
                    produced = list(await ran)
                transcript = _TRANSCRIPT.validate_python(produced)
                result = TaskResultData(task_id=task_id, status="success", result=transcript)
            except AgentError as exc:
                result = _error_result(task_id, exc)
            except ValidationError as exc:
                logger.error("agent %s: the runner returned a malformed transcript: %s", self.agent_id, exc)
                result = _error_result(task_id, AgentError(ErrorCode.MODEL_OUTPUT_INVALID, "The agent produced a malformed transcript"))
            except Exception:
                logger.exception("agent %s: task %s failed unexpectedly", self.agent_id, task_id)
                result = _error_result(task_id, AgentError(ErrorCode.INTERNAL_ERROR, "Internal error in the agent"))
        text = encode(TaskResultMessage(data=result))
        if frame_size(text) > self.send_limit:
            error = AgentError(ErrorCode.PAYLOAD_TOO_LARGE, f"The result exceeds the bridge's message limit of {self.send_limit} bytes")
            text = encode(TaskResultMessage(data=_error_result(task_id, error)))
        await self._send_text(conn, text)
        self.tasks_done += 1
        outcome = result.status if result.status == "success" else f"{result.status} ({result.code})"
        logger.info("agent %s: task %s done in %.1f s: %s", self.agent_id, task_id, time.monotonic() - started, outcome)

    async def _send_result(self, conn: ClientConnection, result: TaskResultData) -> None:
        await self._send_text(conn, encode(TaskResultMessage(data=result)))

    async def _send_text(self, conn: ClientConnection, text: str) -> None:
        try:
            if len(text) > FRAGMENT_CHARS:  # one message in frames of at most 32 KB (4 bytes a character)
                await conn.send(text[i:i + FRAGMENT_CHARS] for i in range(0, len(text), FRAGMENT_CHARS))
            else:
                await conn.send(text)
        except ConnectionClosed:
            pass  # the hub requeues what a lost connection held

    async def _stop_running(self) -> None:
        """A lost connection cancels its tasks: the hub has requeued them already."""
        running = list(self._running.values())
        for task in running:
            task.cancel()
        if running:
            await asyncio.gather(*running, return_exceptions=True)


def _error_result(task_id: str, error: AgentError) -> TaskResultData:
    return TaskResultData(task_id=task_id, status="error", error=error.message, code=error.code.value)
