"""What a chat completion answers, read and checked: :class:`ChatResponse` (with its :class:`Usage` and
:class:`TokenLogprob`) from the JSON body or folded from a Server-Sent Events stream; the detail of an error body;
the upstream's events relayed whole. The requests themselves are :mod:`.client`'s (which re-exports these names).
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from collections.abc import AsyncIterator

from ..errors import AgentError, ErrorCode
from .toolcalls import ToolCall, parse_openai_tool_calls

if TYPE_CHECKING:  # httpx is imported on first use (see client.py)
    import httpx

    from ..deadline import Deadline

__all__ = ["ChatResponse", "TokenLogprob", "Usage"]


@dataclass
class Usage:
    """The token counts a completion reports (0 where the server reports none)."""

    prompt_tokens: int = 0
    completion_tokens: int = 0


@dataclass
class TokenLogprob:
    """One generated token with its log-probability and the top alternatives at that position."""

    token: str
    logprob: float
    top: dict[str, float] = field(default_factory=dict)


@dataclass
class ChatResponse:
    """What one chat completion returned, already checked for shape."""

    content: str
    tool_calls: list[ToolCall]
    finish_reason: str | None
    usage: Usage
    logprobs: list[TokenLogprob] | None
    latency_s: float
    raw: dict[str, Any]


# ---------------------------------------------------------------------------------------------- reading


def _error_detail(response: httpx.Response) -> str:
    try:
        data = response.json()
    except ValueError:
        return response.text[:200].strip() or response.reason_phrase
    error = data.get("error") if isinstance(data, dict) else None
    if isinstance(error, dict):
        return str(error.get("message", error))[:300]
    if isinstance(error, str):
        return error[:300]
    return str(data.get("detail", data))[:300] if isinstance(data, dict) else str(data)[:300]


def _json_or_error(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        raise AgentError(ErrorCode.UPSTREAM_ERROR, "The model server returned a body that is not JSON") from None


def _read_completion(response: httpx.Response, latency_s: float) -> ChatResponse:
    return _completion_from(_json_or_error(response), latency_s)


def _completion_from(data: Any, latency_s: float) -> ChatResponse:
    try:
        choice = data["choices"][0]
        message = choice["message"]
    except (KeyError, IndexError, TypeError):
        raise AgentError(ErrorCode.UPSTREAM_ERROR, "The model server's answer has no choices[0].message") from None
    content = message.get("content") or ""
    if not isinstance(content, str):
        content = json.dumps(content)
    raw_calls = message.get("tool_calls")
    calls, _ = parse_openai_tool_calls(raw_calls if isinstance(raw_calls, list) else [], keep_invalid=True)
    for i, call in enumerate(calls):
        call.id = call.id or f"call_{i}"
    usage_raw = data.get("usage") or {}
    usage = Usage(int(usage_raw.get("prompt_tokens") or 0), int(usage_raw.get("completion_tokens") or 0))
    return ChatResponse(
        content=content,
        tool_calls=calls,
        finish_reason=choice.get("finish_reason"),
        usage=usage,
        logprobs=_read_logprobs(choice.get("logprobs")),
        latency_s=latency_s,
        raw=data,
    )


def _read_logprobs(raw: Any) -> list[TokenLogprob] | None:
    if not isinstance(raw, dict) or not isinstance(raw.get("content"), list):
        return None
    tokens = []
    for item in raw["content"]:
        if not isinstance(item, dict) or "token" not in item:
            continue
        top = {
            str(alt.get("token")): float(alt.get("logprob", float("-inf")))
            for alt in item.get("top_logprobs") or []
            if isinstance(alt, dict)
        }
        tokens.append(TokenLogprob(str(item["token"]), float(item.get("logprob", float("-inf"))), top))
    return tokens


# ---------------------------------------------------------------------------------------------- streaming


async def _sse_data(lines: AsyncIterator[str]) -> AsyncIterator[str]:
    """The ``data`` of each Server-Sent Event (multi-line data joined with newlines; comments skipped)."""
    buffer: list[str] = []
    async for line in lines:
        if not line.strip():
            if buffer:
                yield "\n".join(buffer)
                buffer = []
            continue
        if line.startswith(":"):
            continue
        field_name, _, value = line.partition(":")
        if field_name == "data":
            buffer.append(value[1:] if value.startswith(" ") else value)
    if buffer:
        yield "\n".join(buffer)


class _StreamAssembler:
    """Folds chat-completion chunks into the text deltas and the final :class:`ChatResponse`."""

    def __init__(self) -> None:
        self.content: list[str] = []
        self.calls: dict[int, dict[str, Any]] = {}
        self.finish_reason: str | None = None
        self.usage = Usage()
        self.last: dict[str, Any] = {}

    def add(self, data: str) -> str:
        try:
            chunk = json.loads(data)
        except ValueError:
            raise AgentError(ErrorCode.UPSTREAM_ERROR, "The model server sent a stream chunk that is not JSON") from None
        if not isinstance(chunk, dict):
            raise AgentError(ErrorCode.UPSTREAM_ERROR, "The model server sent a stream chunk that is not an object")
        if chunk.get("error"):
            error = chunk["error"]
            detail = error.get("message", error) if isinstance(error, dict) else error
            raise AgentError(ErrorCode.UPSTREAM_ERROR, f"The model server failed mid-stream: {str(detail)[:300]}")
        self.last = chunk
        if isinstance(chunk.get("usage"), dict):
            usage = chunk["usage"]
            self.usage = Usage(int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0))
        choices = chunk.get("choices") or []
        if not choices or not isinstance(choices[0], dict):
            return ""
        choice = choices[0]
        if choice.get("finish_reason"):
            self.finish_reason = choice["finish_reason"]
        delta = choice.get("delta") or {}
        for raw in delta.get("tool_calls") or []:
            if not isinstance(raw, dict):
                continue
            slot = self.calls.setdefault(int(raw.get("index") or 0), {"id": None, "name": "", "arguments": ""})
            slot["id"] = raw.get("id") or slot["id"]
            function = raw.get("function") or {}
            slot["name"] += function.get("name") or ""
            arguments = function.get("arguments")
            slot["arguments"] += arguments if isinstance(arguments, str) else (json.dumps(arguments) if arguments else "")
        text = delta.get("content")
        if isinstance(text, str) and text:
            self.content.append(text)
            return text
        return ""

    def response(self, latency_s: float) -> ChatResponse:
        message: dict[str, Any] = {"role": "assistant", "content": "".join(self.content)}
        if self.calls:
            message["tool_calls"] = [
                {"id": slot["id"] or f"call_{index}", "type": "function",
                 "function": {"name": slot["name"], "arguments": slot["arguments"]}}
                for index, slot in sorted(self.calls.items())
            ]
        raw = {"id": self.last.get("id"), "model": self.last.get("model"),
               "choices": [{"index": 0, "message": message, "finish_reason": self.finish_reason}],
               "usage": {"prompt_tokens": self.usage.prompt_tokens, "completion_tokens": self.usage.completion_tokens}}
        return _completion_from(raw, latency_s)


async def _whole_events(response: httpx.Response, deadline: Deadline | None, base_url: str) -> AsyncIterator[bytes]:
    """The upstream's Server-Sent Events as they come, whole events only (the lines up to a blank one), so that
    whatever goes out between two pieces (a keep-alive comment) never lands inside an event the network happened
    to split. A failure mid-stream ends it with an ``{"error": ...}`` event; the response is closed at the end."""
    import httpx

    failure: AgentError | None = None
    event: list[str] = []
    try:
        async with asyncio.timeout(deadline.remaining() if deadline is not None else None):
            async for line in response.aiter_lines():
                if line:
                    event.append(line)
                elif event:
                    yield ("\n".join(event) + "\n\n").encode()
                    event = []
            if event:
                yield ("\n".join(event) + "\n\n").encode()
    except TimeoutError:
        failure = AgentError(ErrorCode.UPSTREAM_TIMEOUT, "The model did not finish within the deadline")
    except httpx.HTTPError as exc:
        failure = AgentError(ErrorCode.CONNECTION_FAILED,
                             f"The model server at {base_url} dropped the stream ({type(exc).__name__})")
    finally:
        await response.aclose()
    if failure is not None:
        error = {"error": {"message": failure.message, "type": "server_error", "param": None,
                           "code": failure.code.value}}
        yield b"data: " + json.dumps(error).encode() + b"\n\n"
