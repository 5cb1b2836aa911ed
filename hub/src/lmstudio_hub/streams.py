"""Streaming on the hub: a task's ``task:event`` frames as an async iterator, and sending a
:class:`~lmstudio_agent.endpoint.streaming.StreamResponse` over ASGI while watching for the client leaving."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, MutableMapping

from lmstudio_agent.deadline import Deadline
from lmstudio_agent.agent.events import RunEvent, events_from_transcript

from .hub import BridgeHub

logger = logging.getLogger("lmstudio_hub.streams")

Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


async def hub_events(hub: BridgeHub, instruction: str, tools: Iterable[str], model: str,
                     deadline: Deadline, documents: dict[str, str] | None = None) -> AsyncIterator[RunEvent]:
    """Submit a streamed task and yield its events live; an agent that sends no ``task:event`` frames (an
    older one) gets its transcript's events at the end. Raises the task's AgentError after its events."""
    queue: asyncio.Queue[RunEvent] = asyncio.Queue()
    submitted = asyncio.ensure_future(hub.submit(instruction, tools, model, deadline, on_event=queue.put_nowait,
                                                documents=documents))
    messages = 0
    getting: asyncio.Future[RunEvent] | None = None
    try:
        while True:
            getting = asyncio.ensure_future(queue.get())
            await asyncio.wait({getting, submitted}, return_when=asyncio.FIRST_COMPLETED)
            if getting.done():
                event = getting.result()
                messages += event.type == "message"
                yield event
                continue
            getting.cancel()
            while not queue.empty():
                event = queue.get_nowait()
                messages += event.type == "message"
                yield event
            transcript = submitted.result()  # raises the task's AgentError
            if messages == 0:
                for event in events_from_transcript(transcript):
                    yield event
            return
    finally:
        if getting is not None and not getting.done():
            getting.cancel()
        if not submitted.done():
            submitted.cancel()
            with contextlib.suppress(BaseException):
                await submitted


async def send_stream(send: Send, receive: Receive, status: int, headers: dict[str, str],
                      body: AsyncIterator[bytes], *, head: bool = False) -> None:
    """Send the head at once, then each chunk as it comes; a client that disconnects stops the stream (and
    with it the run behind it)."""
    raw_headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]
    await send({"type": "http.response.start", "status": status, "headers": raw_headers})
    if head:
        await send({"type": "http.response.body", "body": b""})
        await _close(body)
        return

    async def watch() -> None:
        while (await receive())["type"] != "http.disconnect":
            pass

    watching = asyncio.ensure_future(watch())
    chunks = body.__aiter__()
    try:
        while True:
            following = asyncio.ensure_future(chunks.__anext__())
            await asyncio.wait({following, watching}, return_when=asyncio.FIRST_COMPLETED)
            if not following.done():
                logger.info("client left a stream; stopping its run")
                following.cancel()
                with contextlib.suppress(BaseException):
                    await following
                return
            try:
                chunk = following.result()
            except StopAsyncIteration:
                break
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})
    except OSError:  # the socket went away mid-write
        logger.info("client connection lost mid-stream")
    finally:
        watching.cancel()
        await _close(body)


async def _close(body: AsyncIterator[bytes]) -> None:
    aclose = getattr(body, "aclose", None)
    if aclose is not None:
        with contextlib.suppress(BaseException):
            await aclose()
