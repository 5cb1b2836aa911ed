"""``POST /execute`` as a stream: Server-Sent Events in the Vercel AI SDK's UI message stream protocol.

Protocol followed: AI SDK 5 "UI message stream" (``x-vercel-ai-ui-message-stream: v1``), as published at
https://ai-sdk.dev/docs/ai-sdk-ui/stream-protocol and validated by the SDK's ``uiMessageChunkSchema``
(packages/ai/src/ui-message-stream/ui-message-chunks.ts). Every chunk is a strict object there, so no
chunk carries a field the schema does not list; the contract's error code travels in ``errorText``
(``"UPSTREAM_TIMEOUT: ..."``) and in the ``finish`` chunk's ``messageMetadata``. A run maps to:

- ``start`` (``messageId``), then per model round ``start-step`` ... ``finish-step``;
- the model's text: ``text-start`` / ``text-delta`` / ``text-end`` (deltas as the model writes them; a
  thought or final answer that was not streamed comes as one delta);
- each tool call: ``tool-input-available`` (``toolCallId``, ``toolName``, ``input``), then
  ``tool-output-available`` (``output``: the JSON value the tool returned, an object stays an object) or
  ``tool-output-error`` (``errorText``);
- a recovered error of the run (an unreadable reply the model is asked to fix): ``data-agent-error``;
- a failed run: ``message-metadata`` (``success: false``, ``code``), then ``error``. ``useChat`` stops reading
  at the ``error`` chunk, so the code goes out first, in a chunk it keeps on the message (``message.metadata``);
- a step opens with its first part: a model round that wrote nothing (the one a failed run ends on) leaves
  no empty ``start-step``/``finish-step`` pair;
- ``finish`` (``messageMetadata``: ``success``, ``cached``, ``code`` on failure), then ``data: [DONE]``.

Between events a comment line (``: keep-alive``) goes out every :data:`HEARTBEAT_SECONDS`, so proxies and
tunnels do not cut an idle stream. The same encoder serves the hub, the Worker and the async runs' event
streams. The run itself is the one request pipeline (:class:`~lmstudio_agent.endpoint.pipeline.Execution`), which
the JSON answer collects: the same plan, the same cache entry (replayed here as a stream), the same rule
that a run without an answer is never cached.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from dataclasses import dataclass, field
from typing import Any, Protocol
from collections.abc import AsyncIterator, Iterable, Mapping

from .cache import CacheStore
from .contract import (
    CORS_HEADERS,
    Body,
    ExecuteBackend,
    ExecuteOptions,
    ExecuteRequest,
    HttpResponse,
    ToolSelection,
    error_response,
    execute_request_from,
    read_json_object,
)
from .conversation import execute_request_from_chat, is_chat_body
from ..deadline import Deadline
from ..errors import AgentError, ErrorCode
from ..agent.events import RunEvent
from ..agent.messages import AgentMessage
from .pipeline import start_execution

logger = logging.getLogger("lmstudio_agent.endpoint.streaming")

PROTOCOL = "ai-sdk-ui-message-stream"
PROTOCOL_VERSION = "v1"  # the header value of AI SDK 5's UI message stream
HEARTBEAT_SECONDS = 15.0
HEARTBEAT = b": keep-alive\n\n"
DONE = b"data: [DONE]\n\n"
STREAM_HEADERS: dict[str, str] = {
    "Content-Type": "text/event-stream; charset=utf-8",
    "Cache-Control": "no-cache, no-transform",
    "X-Accel-Buffering": "no",
    "x-vercel-ai-ui-message-stream": PROTOCOL_VERSION,
}


# ------------------------------------------------------------------------------------- the encoder


class UIMessageStream:
    """Turns :class:`RunEvent` s into UI message stream chunks (plain dicts), keeping the parts well nested:
    a step is open around its text and tool parts, a text part is closed before a tool part or a new step.

    Args:
        message_id: The assistant message's id in the ``start`` chunk (default: a new random one).
    """

    def __init__(self, message_id: str | None = None) -> None:
        """Start with no step, text part or tool call open."""
        self.message_id = message_id or f"msg-{uuid.uuid4().hex[:16]}"
        self._step_open = False
        self._text_id: str | None = None
        self._texts = 0
        self._streamed_in_step = False
        self._calls = 0
        self._pending: list[tuple[str, str]] = []  # (toolCallId, toolName) awaiting their outcome
        self._held: AgentMessage | None = None  # a run-level error message: the run's last, or recovered from?

    def start(self) -> list[dict[str, Any]]:
        """The stream's first chunk: ``start`` with the message id."""
        return [{"type": "start", "messageId": self.message_id}]

    def feed(self, event: RunEvent) -> list[dict[str, Any]]:
        """The chunks for one run event (possibly none), with the steps and text parts opened and closed
        around them. A run-level error message is held back until the next call, which tells whether the run
        recovered from it (it goes out as ``data-agent-error``) or failed with it (:meth:`fail` says it once).

        Args:
            event: The next event of the run.
        """
        out = self._flush_held()
        if event.type == "step-start":  # the new round's start-step goes out with its first part
            return out + self._close_step()
        if event.type == "text-delta":
            if not event.delta:
                return out
            out += self._ensure_step() + self._ensure_text()
            self._streamed_in_step = True
            return out + [{"type": "text-delta", "id": self._text_id, "delta": event.delta}]
        assert event.message is not None
        if event.message.type == "error" and not event.message.tool:
            # The loop records a run-ending failure as its last message before raising: held back one event,
            # so that the protocol's ``error`` chunk (from :meth:`fail`) says it once.
            self._held = event.message
            return out
        return out + self._ensure_step() + self._message(event.message)

    def fail(self, code: str, message: str) -> list[dict[str, Any]]:
        """The chunks of a failed run (the ``error``; ``finish`` follows from :meth:`finish`).

        Args:
            code: The contract's error code (an :class:`~lmstudio_agent.errors.ErrorCode` value).
            message: The human-readable message.
        """
        held, self._held = self._held, None
        out = [] if held is None or (held.code == code and held.content == message) else self._emit(held)
        return out + self._close_step() + [{"type": "message-metadata", "messageMetadata": {"success": False, "code": code}},
                                           {"type": "error", "errorText": f"{code}: {message}"}]

    def finish(self, metadata: Mapping[str, Any]) -> list[dict[str, Any]]:
        """The last chunks: a held-back message, the open step closed, then ``finish``.

        Args:
            metadata: The ``finish`` chunk's ``messageMetadata`` (:func:`finish_metadata`).
        """
        return self._flush_held() + self._close_step() + [{"type": "finish", "messageMetadata": dict(metadata)}]

    def _flush_held(self) -> list[dict[str, Any]]:
        held, self._held = self._held, None
        return [] if held is None else self._emit(held)

    def _emit(self, message: AgentMessage) -> list[dict[str, Any]]:
        return self._ensure_step() + self._message(message)

    # ------------------------------------------------------------------------------------------ parts

    def _open_step(self) -> list[dict[str, Any]]:
        self._step_open = True
        self._streamed_in_step = False
        return [{"type": "start-step"}]

    def _ensure_step(self) -> list[dict[str, Any]]:
        return [] if self._step_open else self._open_step()

    def _close_step(self) -> list[dict[str, Any]]:
        if not self._step_open:
            return []
        self._step_open = False
        return self._close_text() + [{"type": "finish-step"}]

    def _ensure_text(self) -> list[dict[str, Any]]:
        if self._text_id is not None:
            return []
        self._texts += 1
        self._text_id = f"text-{self._texts}"
        return [{"type": "text-start", "id": self._text_id}]

    def _close_text(self) -> list[dict[str, Any]]:
        if self._text_id is None:
            return []
        chunk = {"type": "text-end", "id": self._text_id}
        self._text_id = None
        return [chunk]

    def _whole_text(self, text: str) -> list[dict[str, Any]]:
        if not text or self._streamed_in_step:
            return []  # the deltas already carried it
        out = self._ensure_text() + [{"type": "text-delta", "id": self._text_id, "delta": text}]
        return out + self._close_text()

    def _take_call(self, tool: str | None) -> str | None:
        for index, (call_id, name) in enumerate(self._pending):
            if tool is None or name == tool:
                del self._pending[index]
                return call_id
        return None

    def _message(self, message: AgentMessage) -> list[dict[str, Any]]:
        if message.type == "thought":
            return self._whole_text(message.content or "")
        if message.type == "action":
            self._calls += 1
            new_id = f"call-{self._calls}"
            self._pending.append((new_id, message.tool or ""))
            return self._close_text() + [{"type": "tool-input-available", "toolCallId": new_id,
                                          "toolName": message.tool or "", "input": message.args or {}}]
        if message.type == "result" and message.tool:
            call_id = self._take_call(message.tool)
            if call_id is None:
                return []
            return [{"type": "tool-output-available", "toolCallId": call_id, "output": tool_output(message.content)}]
        if message.type == "result":  # the final answer; a terminal tool's call gets it as its output
            out: list[dict[str, Any]] = []
            call_id = self._take_call(None)
            if call_id is not None:
                out.append({"type": "tool-output-available", "toolCallId": call_id, "output": message.content})
            return out + self._whole_text(message.content or "")
        # an error
        if message.tool:
            call_id = self._take_call(message.tool)
            text = f"{message.code or ErrorCode.TOOL_EXECUTION_FAILED.value}: {message.content or ''}"
            if call_id is not None:
                return [{"type": "tool-output-error", "toolCallId": call_id, "errorText": text}]
        return self._close_text() + [{"type": "data-agent-error",
                                      "data": {"code": message.code, "message": message.content, "tool": message.tool}}]


def tool_output(content: str | None) -> Any:
    """A tool's output as the JSON value the tool returned: the transcript keeps it as text (the loop writes a
    non-string result as JSON), so text that is a JSON object or array is read back; any other text (a plain
    string result, a result cut short for the model) stays the string it is.

    Args:
        content: The result message's content.
    """
    text = (content or "").strip()
    if text[:1] in ("{", "[") and text[-1:] in ("}", "]"):
        try:
            return json.loads(text)
        except ValueError:
            pass
    return content


def sse(chunk: Mapping[str, Any], event_id: int | None = None) -> bytes:
    """One chunk as a Server-Sent Event (with an ``id:`` line when ``event_id`` is given).

    Args:
        chunk: The chunk, JSON-encodable.
        event_id: The event's id, for a client that resumes with ``Last-Event-ID`` (None: no ``id:`` line).
    """
    head = f"id: {event_id}\n" if event_id is not None else ""
    return (head + "data: " + json.dumps(chunk, ensure_ascii=False, separators=(",", ":")) + "\n\n").encode()


def encode_run(events: Iterable[RunEvent], *, error: AgentError | None = None,
               metadata: Mapping[str, Any] | None = None, message_id: str | None = None) -> list[dict[str, Any]]:
    """The whole chunk list of a finished run (used for cache replays and the async runs' snapshots).

    Args:
        events: The run's events, in order.
        error: What the run failed with (None: it succeeded).
        metadata: The ``finish`` chunk's metadata (default: :func:`finish_metadata` for ``error``).
        message_id: The assistant message's id (default: a new random one).
    """
    encoder = UIMessageStream(message_id)
    chunks = encoder.start()
    for event in events:
        chunks += encoder.feed(event)
    if error is not None:
        chunks += encoder.fail(error.code.value, error.message)
    chunks += encoder.finish(metadata or finish_metadata(error))
    return chunks


def finish_metadata(error: AgentError | None, *, cached: bool = False) -> dict[str, Any]:
    """The ``finish`` chunk's ``messageMetadata``: ``success`` and ``cached``, or ``success: false`` and the code.

    Args:
        error: What the run failed with (None: it succeeded).
        cached: Whether a successful answer was replayed from the cache.
    """
    if error is None:
        return {"success": True, "cached": cached}
    return {"success": False, "code": error.code.value}


# ------------------------------------------------------------------------------------ the backend side


class StreamingBackend(Protocol):
    """An :class:`~lmstudio_agent.endpoint.contract.ExecuteBackend` that can also stream a run's events."""

    def stream(self, instruction: str, tools: ToolSelection, model: str, deadline: Deadline,
               documents: dict[str, str] | None = None) -> AsyncIterator[RunEvent]:
        """The run's events as they happen; raises AgentError at the end of a failed run.

        Args:
            instruction: What the agent should do.
            tools: The selected tools.
            model: The model to run on.
            deadline: The run's deadline.
            documents: The request's long inputs, name -> text.
        """
        ...


def wants_stream(headers: Mapping[str, str], request: ExecuteRequest | None = None) -> bool:
    """``Accept: text/event-stream`` or ``"stream": true`` in the body.

    Args:
        headers: The request headers (any case).
        request: The parsed request, when there is one.
    """
    accept = next((v for k, v in headers.items() if k.lower() == "accept"), "")
    if "text/event-stream" in accept.lower():
        return True
    return bool(request is not None and getattr(request, "stream", None))


# ------------------------------------------------------------------------------------- the response


@dataclass
class StreamResponse:
    """A streamed HTTP answer: the adapters send ``status`` and ``headers`` at once, then each chunk of
    ``body`` as it comes (and ``aclose()`` it when the client leaves)."""

    body: AsyncIterator[bytes]
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    # The protocol's own headers (the UI message stream's by default; OpenAI chunks have no version header).
    base_headers: dict[str, str] = field(default_factory=lambda: dict(STREAM_HEADERS))

    def all_headers(self) -> dict[str, str]:
        """The headers to send: CORS, then the protocol's, then this response's own (later ones win)."""
        return {**CORS_HEADERS, **self.base_headers, **self.headers}


async def with_heartbeat(chunks: AsyncIterator[bytes], interval: float = HEARTBEAT_SECONDS) -> AsyncIterator[bytes]:
    """``chunks`` with :data:`HEARTBEAT` whenever ``interval`` seconds pass without one. Closing the result
    closes ``chunks`` (so a client that leaves cancels the run).

    Args:
        chunks: The stream's chunks.
        interval: Seconds of silence after which a heartbeat goes out.
    """
    queue: asyncio.Queue[bytes | BaseException | None] = asyncio.Queue()  # unbounded: a run's chunks are few

    async def pump() -> None:
        try:
            async for chunk in chunks:
                await queue.put(chunk)
        except Exception as exc:
            await queue.put(exc)
        else:
            await queue.put(None)

    task = asyncio.ensure_future(pump())
    try:
        while True:
            try:
                item = await asyncio.wait_for(queue.get(), interval)
            except TimeoutError:
                yield HEARTBEAT
                continue
            if item is None:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        if not task.done():
            task.cancel()
        try:
            await task
        except BaseException:
            pass
        aclose = getattr(chunks, "aclose", None)
        if aclose is not None:
            try:
                await aclose()
            except BaseException:
                pass


async def stream_execute(
    request: ExecuteRequest,
    backend: ExecuteBackend,
    *,
    headers: Mapping[str, str] | None = None,
    cache: CacheStore | None = None,
    options: ExecuteOptions | None = None,
    heartbeat_seconds: float = HEARTBEAT_SECONDS,
) -> StreamResponse:
    """``POST /execute`` as a stream. Everything that can be refused before the run (tools, the cache read)
    raises AgentError here, so it gets the contract's JSON error; once the stream starts, a failure is an
    ``error`` chunk. A cache hit replays the stored events; a finished, cacheable run stores them.

    Args:
        request: The validated request.
        backend: What runs the agent.
        headers: The request headers; ``Cache-Control: no-cache`` (or ``no-store``) skips the cache.
        cache: The cache store (None: no cache).
        options: The deployment's limits (default: :class:`~lmstudio_agent.endpoint.contract.ExecuteOptions`'s).
        heartbeat_seconds: Silence after which the stream sends a comment line.
    """
    run = await start_execution(request, backend, headers=headers, cache=cache, options=options, live=True)

    async def body() -> AsyncIterator[bytes]:
        encoder = UIMessageStream()
        for chunk in encoder.start():
            yield sse(chunk)
        async for event in run.events():
            for chunk in encoder.feed(event):
                yield sse(chunk)
        if run.error is not None:
            if run.error.http_status >= 500:
                logger.warning("streamed execute failed: %s", run.error)
            for chunk in encoder.fail(run.error.code.value, run.error.message):
                yield sse(chunk)
        for chunk in encoder.finish(finish_metadata(run.error, cached=run.cached)):
            yield sse(chunk)
        yield DONE

    return StreamResponse(with_heartbeat(body(), heartbeat_seconds))


async def handle_execute_stream(
    body: Body,
    headers: Mapping[str, str],
    backend: ExecuteBackend,
    *,
    cache: CacheStore | None = None,
    options: ExecuteOptions | None = None,
    heartbeat_seconds: float = HEARTBEAT_SECONDS,
) -> HttpResponse | StreamResponse:
    """A streamed ``POST /execute`` after auth: the stream, or the contract's JSON error for a request
    refused before the run starts (bad body, unknown tool, no agent). Never raises.

    Args:
        body: The raw request body (the contract's JSON or the AI SDK's chat body).
        headers: The request headers.
        backend: What runs the agent.
        cache: The cache store (None: no cache).
        options: The deployment's limits (default: :class:`~lmstudio_agent.endpoint.contract.ExecuteOptions`'s).
        heartbeat_seconds: Silence after which the stream sends a comment line.
    """
    options = options or ExecuteOptions()
    try:
        request = stream_request_from(read_json_object(body, options.max_body_bytes))
    except AgentError as exc:
        return error_response(exc.code, exc.message)
    return await stream_answer(request, headers, backend, cache=cache, options=options,
                               heartbeat_seconds=heartbeat_seconds)


def stream_request_from(data: dict[str, Any]) -> ExecuteRequest:
    """A parsed body that asks for a stream validated into an :class:`ExecuteRequest`: the AI SDK's chat body
    (:func:`~lmstudio_agent.endpoint.conversation.execute_request_from_chat`) or the contract's own; AgentError (400)
    otherwise.

    Args:
        data: The parsed JSON body.
    """
    return execute_request_from_chat(data) if is_chat_body(data) else execute_request_from(data)


async def stream_answer(
    request: ExecuteRequest,
    headers: Mapping[str, str],
    backend: ExecuteBackend,
    *,
    cache: CacheStore | None = None,
    options: ExecuteOptions | None = None,
    heartbeat_seconds: float = HEARTBEAT_SECONDS,
) -> HttpResponse | StreamResponse:
    """A validated request's stream, or the contract's JSON error for one refused before the run starts
    (unknown tool, no agent). Never raises.

    Args:
        request: The validated request.
        headers: The request headers (lower-case names).
        backend: What runs the agent.
        cache: The cache store (None: no cache).
        options: The deployment's limits (default: :class:`~lmstudio_agent.endpoint.contract.ExecuteOptions`'s).
        heartbeat_seconds: Silence after which the stream sends a comment line.
    """
    try:
        return await stream_execute(request, backend, headers=headers, cache=cache, options=options,
                                    heartbeat_seconds=heartbeat_seconds)
    except AgentError as exc:
        return error_response(exc.code, exc.message)
    except Exception:
        logger.exception("unexpected error before a streamed execute")
        return error_response(ErrorCode.INTERNAL_ERROR, "Internal error while running the agent")
