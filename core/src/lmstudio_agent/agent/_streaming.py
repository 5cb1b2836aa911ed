"""How :meth:`Agent.astream <lmstudio_agent.agent.loop.Agent.astream>` streams a run: the sink a streamed run's rounds
send their events to, a round's model call streamed into it, and the queue that turns the run into an async iterator
of :class:`~lmstudio_agent.agent.events.RunEvent` s.
"""

from __future__ import annotations

import asyncio
import contextvars
from typing import Any
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence

from ..deadline import Deadline
from ..model.client import ChatClient
from ..model.modes import Strategy, ToolMode, Turn
from .events import RunEvent
from .messages import AgentMessage
from .tools import Tool

# Set inside a streamed run: where the rounds and the model's text deltas go (None: the run is not streamed).
EVENT_SINK: contextvars.ContextVar[Callable[[RunEvent], None] | None] = contextvars.ContextVar(
    "lmstudio_agent_event_sink", default=None)
# The number of the next step a streamed run announces.
STEP: contextvars.ContextVar[int] = contextvars.ContextVar("lmstudio_agent_step", default=0)


async def ask_streaming(sink: Callable[[RunEvent], None], client: ChatClient, model: str, strategy: Strategy,
                        messages: list[dict[str, Any]], tools: Sequence[Tool], deadline: Deadline | None,
                        extra: dict[str, Any], max_tokens: int) -> Turn:
    """One round of a streamed run: announce the step and, where the text is prose (native calls, or no tools
    offered), stream the model's text as it comes. Parsed and constrained rounds with tools write call markup or
    JSON, so they are asked in one piece.

    Args:
        sink: Where the step and the text deltas go.
        client: The chat client to the model server.
        model: The model id.
        strategy: The mode's strategy, which reads the reply.
        messages: The round's chat messages.
        tools: The tools offered this round.
        deadline: When the round must end.
        extra: The strategy's additions to the request (tools, grammar, ...).
        max_tokens: The most tokens the reply may have.
    """
    sink(RunEvent.step_start(STEP.get()))
    STEP.set(STEP.get() + 1)
    # Constrained replies are JSON even on the last round (the answer branch), so never streamed as text.
    if strategy.mode is ToolMode.CONSTRAINED or (tools and strategy.mode is not ToolMode.NATIVE):
        response = await client.chat(messages, model=model, max_tokens=max_tokens, deadline=deadline, **extra)
        return strategy.read(response, tools)
    final = None
    async for item in client.chat_stream(messages, model=model, max_tokens=max_tokens, deadline=deadline, **extra):
        if isinstance(item, str):
            sink(RunEvent.text(item))
        else:
            final = item
    assert final is not None  # chat_stream always ends with the response
    return strategy.read(final, tools)


async def stream_run(run: Callable[[Callable[[AgentMessage], None]], Awaitable[object]]) -> AsyncIterator[RunEvent]:
    """Start ``run`` in a task of its own and yield its events as they happen: each round's ``step-start``, the
    model's text deltas and every transcript message. A failed run yields what it emitted, then raises its error.

    Leaving the iteration early (``break``, a cancelled consumer) cancels the run.

    Args:
        run: Starts the run with the callback its transcript messages go to.
    """
    queue: asyncio.Queue[RunEvent | BaseException | None] = asyncio.Queue()

    async def produce() -> None:
        EVENT_SINK.set(queue.put_nowait)
        STEP.set(0)
        try:
            await run(lambda m: queue.put_nowait(RunEvent.of(m)))
        except BaseException as exc:  # handed to the consumer, which re-raises it
            queue.put_nowait(exc)
            if not isinstance(exc, Exception):
                raise
        else:
            queue.put_nowait(None)

    runner = asyncio.ensure_future(produce())
    try:
        while True:
            item = await queue.get()
            if item is None:
                break
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        if not runner.done():
            runner.cancel()
        try:
            await runner
        except BaseException:
            pass
