"""The hub's OpenAI-compatible pass-through (``POST /v1/chat/completions`` for a model behind the hub).

A request goes as a ``chat:forward`` frame to the least loaded connected agent that serves its model and
registered the ``chat:forward`` capability; its ``chat:result`` (or its ``chat:chunk`` events as they come) is
the answer. It is not queued nor retried, unlike a task (:mod:`lmstudio_hub.scheduler`): a model request is not
idempotent the way an agent task's answer is cached, and a client of an OpenAI API retries itself.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

from lmstudio_agent.bridge.protocol import (
    CHAT_FORWARD,
    ChatChunkData,
    ChatForwardData,
    ChatForwardMessage,
    ChatResultData,
    agent_code,
    encode,
    error_frame,
)
from lmstudio_agent.deadline import Deadline
from lmstudio_agent.errors import AgentError, ErrorCode

from .state import MAX_ERROR_CHARS, Agent, AgentRegistry, HubSettings, HubStats


@dataclass(eq=False)
class Chat:
    """A pass-through on its way: the agent that has it and what it sent back so far."""

    agent: Agent
    answers: asyncio.Queue[ChatChunkData | ChatResultData | AgentError] = field(default_factory=asyncio.Queue)


class ChatPassThrough:
    """The chat requests on their way to agents, by ``request_id``.

    Args:
        settings: The hub's settings.
        agents: The registered agents to choose from.
        stats: The hub's counters.
        send: Sends a frame to an agent without waiting.
        serving: Whether the hub is serving.
    """

    def __init__(self, settings: HubSettings, agents: AgentRegistry, stats: HubStats,
                 send: Callable[[Agent, str], None], serving: Callable[[], bool]) -> None:
        self.settings = settings
        self.agents = agents
        self.stats = stats
        self._send = send
        self._serving = serving
        self._chats: dict[str, Chat] = {}

    def models(self) -> list[str]:
        """The models a connected agent passes chat requests through to (it registered ``chat:forward``)."""
        return sorted({a.model for a in self.agents if CHAT_FORWARD in a.capabilities and a.model})

    async def forward(self, body: dict[str, Any], deadline: Deadline, *, stream: bool) -> Any:
        """Pass ``body`` on: see :meth:`lmstudio_hub.hub.BridgeHub.forward_chat`."""
        model = str(body.get("model") or "")
        agents = [a for a in self.agents if CHAT_FORWARD in a.capabilities and a.model == model]
        if not self._serving() or not agents:
            raise AgentError(ErrorCode.NO_AGENT_AVAILABLE, f"No connected agent passes requests to the model {model!r}",
                             details={"retry_after": self.settings.retry_after_seconds})
        agent = max(agents, key=lambda a: a.free)
        request_id = uuid.uuid4().hex
        frame = ChatForwardMessage(data=ChatForwardData(request_id=request_id, body=body,
                                                        deadline_seconds=max(0.1, deadline.clamp(900.0))))
        chat = Chat(agent)
        self._chats[request_id] = chat
        self._send(agent, encode(frame))
        try:
            first = await self._next_answer(chat, deadline)
        except BaseException:
            self._chats.pop(request_id, None)
            raise
        if isinstance(first, ChatResultData) or not stream:
            self._chats.pop(request_id, None)
            return self._chat_result(first)
        return self._chat_events(request_id, chat, first, deadline)

    def on_answer(self, agent: Agent, data: ChatChunkData | ChatResultData, kind: str) -> str | None:
        """A ``chat:chunk`` or ``chat:result`` from ``agent``; the returned error frame, if any, goes back to it."""
        chat = self._chats.get(data.request_id)
        if chat is None or chat.agent is not agent:
            self.stats.protocol_errors += 1
            return error_frame(ErrorCode.NOT_FOUND, f"Unknown request_id {data.request_id!r}", message_type=kind)
        chat.answers.put_nowait(data)
        return None

    def agent_lost(self, agent: Agent, reason: str) -> None:
        """``agent``'s connection ended: each request it had fails with CONNECTION_FAILED."""
        for chat in self._chats.values():
            if chat.agent is agent:
                chat.answers.put_nowait(AgentError(ErrorCode.CONNECTION_FAILED,
                                                   f"The agent {agent.agent_id!r} disconnected ({reason})"))

    def fail_all(self, message: str) -> None:
        """Fail every request on its way with NO_AGENT_AVAILABLE (the hub is going away)."""
        for chat in self._chats.values():
            chat.answers.put_nowait(AgentError(ErrorCode.NO_AGENT_AVAILABLE, message))

    async def _next_answer(self, chat: Chat, deadline: Deadline) -> ChatChunkData | ChatResultData:
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

    async def _chat_events(self, request_id: str, chat: Chat, first: ChatChunkData,
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
