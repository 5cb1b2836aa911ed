"""The OpenAI-compatible face of every endpoint: ``GET /v1/models`` and ``POST /v1/chat/completions``.

The clients people already use (the OpenAI SDKs, LangChain, LlamaIndex, the AI SDK's OpenAI-compatible
provider) call a deployment with no custom code. It is the same deployment as ``/execute``: the same key
(``Authorization: Bearer <key>``, as every OpenAI client sends it), body limit, deadline, cache rules and
error codes, only in OpenAI's shapes:

- **Models.** ``GET /v1/models`` lists :data:`AGENT_MODEL` (the agent loop on the deployment's registered
  tools) and the models the deployment lets through (the backend's ``openai_models()``; none on a backend
  without it).
- **The agent.** ``model: "agent"``: the conversation becomes one instruction
  (:mod:`lmstudio_agent.endpoint.conversation`: the last user message, with the conversation so far), the agent runs
  on every tool of the allow-list and its final answer is one assistant message. Client-supplied ``tools``
  are refused (the agent's tools are the deployment's). ``stream: true`` answers with OpenAI chunks: the
  role at once, the answer once the run has it, keep-alive comments meanwhile; a failed run sends an
  ``{"error": ...}`` event, which OpenAI's SDKs raise. A non-streamed answer is cached by the contract's
  rules (never with a side-effect tool on the allow-list, never a streamed one).
- **A model behind it.** Any other model the deployment allows: the request goes to the upstream's
  ``/chat/completions`` as sent (tool calls and streaming preserved), through the backend's
  ``forward_chat``. A non-streamed request is cached unless the client asks for a fresh answer
  (``Cache-Control: no-cache``); its key is the whole body (and, on the hub, the agent identities that may
  serve it: the backend's ``forward_owner()``).
- **Errors.** ``{"error": {"message", "type", "param", "code"}}`` with the contract's HTTP status; ``code``
  is the contract's :class:`~lmstudio_agent.errors.ErrorCode` value (an unknown model: 404 ``NOT_FOUND``,
  ``param: "model"``).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from typing import Any, Optional, Union
from collections.abc import AsyncIterator, Mapping

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .cache import CacheStore, cache_key, is_cacheable
from .contract import (Body, ExecuteBackend, ExecuteOptions, ExecuteRequest, Headers, HttpResponse, KeySource,
                       header_map, key_refusal, read_json_object, route_refusal)
from .conversation import instruction_from_turns
from ..deadline import Deadline
from ..errors import AgentError, ErrorCode, validation_problems
from ..agent.events import transcript_of
from ..agent.messages import final_answer
from .pipeline import backend_events, execute, plan_execute, prepare
from .streaming import DONE, HEARTBEAT_SECONDS, StreamResponse, with_heartbeat

logger = logging.getLogger("lmstudio_agent.endpoint.openai_api")

AGENT_MODEL = "agent"
OWNER = "lmstudio-agent"
OPENAI_STREAM_HEADERS: dict[str, str] = {
    "Content-Type": "text/event-stream; charset=utf-8",
    "Cache-Control": "no-cache, no-transform",
    "X-Accel-Buffering": "no",
}
ROUTES = {"/v1/models": "GET", "/v1/chat/completions": "POST"}
_ERROR_TYPES = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
                404: "not_found_error", 405: "invalid_request_error", 413: "invalid_request_error",
                429: "rate_limit_error"}


class OpenAIErrorDetail(BaseModel):
    """The ``error`` object of OpenAI's error shape."""

    message: str = Field(description="A human-readable message; never a stack trace.")
    type: str = Field(description="OpenAI's error type (invalid_request_error, authentication_error, ...).")
    param: Optional[str] = Field(default=None, description="The request field at fault, if one is.")
    code: ErrorCode = Field(description="The contract's error code.")


class OpenAIError(BaseModel):
    """Error body of the ``/v1/`` routes (OpenAI's shape)."""

    error: OpenAIErrorDetail


def openai_error(code: ErrorCode, message: str, *, param: str | None = None,
                 headers: Mapping[str, str] | None = None) -> HttpResponse:
    """An error in OpenAI's shape, with the contract's status for ``code``.

    Args:
        code: The contract's error code (its value is the body's ``code``).
        message: The human-readable message (never a stack trace).
        param: The request field at fault, if one is.
        headers: Extra response headers (``WWW-Authenticate``, ``Allow``).
    """
    status = code.http_status
    kind = _ERROR_TYPES.get(status, "server_error" if status >= 500 else "invalid_request_error")
    body = {"error": {"message": message, "type": kind, "param": param, "code": code.value}}
    return HttpResponse(status, body, dict(headers or {}))


def _as_openai(response: HttpResponse) -> HttpResponse:
    """A contract error response (``{"success": false, "code", "error"}``) in OpenAI's shape."""
    return openai_error(ErrorCode(response.body["code"]), str(response.body.get("error", "")), headers=response.headers)


class ChatMessage(BaseModel):
    """One message of a chat-completions request (only what the agent reads is checked)."""

    model_config = ConfigDict(extra="allow")

    role: str = Field(min_length=1, max_length=32)
    content: Union[str, list[dict[str, Any]], None] = None

    def text(self) -> str:
        """The message's text: ``content`` when a string, else its ``text`` parts joined."""
        if isinstance(self.content, str):
            return self.content
        return "".join(str(part.get("text") or "") for part in self.content or [] if part.get("type") == "text")


class ChatCompletionRequest(BaseModel):
    """A chat-completions body: ``model`` and ``messages`` are checked; the rest goes upstream as sent."""

    model_config = ConfigDict(extra="allow")

    model: str = Field(min_length=1, max_length=256, examples=[AGENT_MODEL],
                       description=f"{AGENT_MODEL!r} (the agent), or a model GET /v1/models lists.")
    messages: list[ChatMessage] = Field(min_length=1, description="The conversation; for the agent, the last is a user message.")
    stream: Optional[bool] = Field(default=None, description="true: OpenAI chat.completion.chunk events (SSE).")


async def handle_openai(
    method: str,
    path: str,
    headers: Headers,
    body: Body,
    *,
    backend: ExecuteBackend,
    api_key: KeySource,
    cache: CacheStore | None = None,
    options: ExecuteOptions | None = None,
    heartbeat_seconds: float = HEARTBEAT_SECONDS,
) -> HttpResponse | StreamResponse:
    """One request under ``/v1/`` (see the module docstring); never raises.

    Args:
        method: The HTTP method (case-sensitive).
        path: The request path, ``/v1/...``.
        headers: The request headers (a mapping, or (name, value) pairs).
        body: The raw request body.
        backend: What runs the agent and reaches the models behind it.
        api_key: The client key the deployment expects (or a function that looks it up).
        cache: Where answers are cached (None: no cache).
        options: The deployment's limits (deadline, cache TTL, body size).
        heartbeat_seconds: Silence after which a stream sends a comment line.
    """
    options = options or ExecuteOptions()
    path = "/" + path.strip("/")
    refused = route_refusal(method, path, ROUTES, lambda code, message, extra: openai_error(code, message, headers=extra))
    if refused is None:
        refused = key_refusal(headers, api_key)
        refused = None if refused is None else _as_openai(refused)
    if refused is not None:
        return refused
    lowered = header_map(headers)
    try:
        if path == "/v1/models":
            return HttpResponse(200, {"object": "list", "data": models(backend)}, {"Cache-Control": "no-store"})
        return await chat_completions(body, lowered, backend, cache=cache, options=options,
                                      heartbeat_seconds=heartbeat_seconds)
    except AgentError as exc:
        if exc.http_status >= 500:
            logger.warning("chat completion failed: %s", exc)
        return openai_error(exc.code, exc.message, param=exc.details.get("param"))
    except Exception:
        logger.exception("unexpected error in a chat completion")
        return openai_error(ErrorCode.INTERNAL_ERROR, "Internal error while answering")


def allowed_models(backend: ExecuteBackend) -> list[str]:
    """The models behind the deployment that requests may name (the backend's ``openai_models()``; none
    without it). :data:`AGENT_MODEL` is never among them: that name always means the agent.

    Args:
        backend: The deployment's backend.
    """
    listing = getattr(backend, "openai_models", None)
    return [m for m in (listing() if listing is not None else []) if m != AGENT_MODEL]


def models(backend: ExecuteBackend) -> list[dict[str, Any]]:
    """``GET /v1/models``' entries: the agent, then the models behind it.

    Args:
        backend: The deployment's backend.
    """
    entries = [{"id": AGENT_MODEL, "object": "model", "created": 0, "owned_by": OWNER}]
    return entries + [{"id": m, "object": "model", "created": 0, "owned_by": "upstream"} for m in allowed_models(backend)]


async def chat_completions(body: Body, headers: Mapping[str, str], backend: ExecuteBackend, *,
                           cache: CacheStore | None, options: ExecuteOptions,
                           heartbeat_seconds: float = HEARTBEAT_SECONDS) -> HttpResponse | StreamResponse:
    """``POST /v1/chat/completions`` after auth; raises AgentError for a refusal.

    Args:
        body: The raw request body.
        headers: The request headers (lower-case names).
        backend: What runs the agent and reaches the models behind it.
        cache: Where answers are cached (None: no cache).
        options: The deployment's limits.
        heartbeat_seconds: Silence after which a stream sends a comment line.
    """
    data = read_json_object(body, options.max_body_bytes)
    try:
        request = ChatCompletionRequest.model_validate(data)
    except ValidationError as exc:
        raise AgentError(ErrorCode.INVALID_REQUEST, "Invalid request body: " + validation_problems(exc, root="body")) from None
    if request.model == AGENT_MODEL:
        if data.get("tools") or data.get("functions"):
            raise AgentError(ErrorCode.INVALID_REQUEST,
                             f"The {AGENT_MODEL!r} model runs the deployment's registered tools; send no 'tools'",
                             details={"param": "tools"})
        instruction = instruction_from_turns([(m.role, m.text()) for m in request.messages])
        execute_request = ExecuteRequest(instruction=instruction)
        if request.stream:
            return await _agent_stream(execute_request, backend, headers, cache, options, heartbeat_seconds)
        return await _agent_answer(execute_request, backend, headers, cache, options)
    if request.model not in allowed_models(backend):
        offered = ", ".join([AGENT_MODEL, *allowed_models(backend)])
        raise AgentError(ErrorCode.NOT_FOUND, f"The model {request.model!r} is not served here; models: {offered}",
                         details={"param": "model"})
    return await _forward(data, backend, headers, cache, options, heartbeat_seconds)


# ------------------------------------------------------------------------------------------- the agent


def _completion_id() -> str:
    return f"chatcmpl-{uuid.uuid4().hex[:24]}"


async def _agent_answer(request: ExecuteRequest, backend: ExecuteBackend, headers: Mapping[str, str],
                        cache: CacheStore | None, options: ExecuteOptions) -> HttpResponse:
    response = await execute(request, backend, headers=headers, cache=cache, options=options)
    answer = final_answer(response.result) or ""
    body = {
        "id": _completion_id(), "object": "chat.completion", "created": int(time.time()), "model": AGENT_MODEL,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": answer}, "finish_reason": "stop",
                     "logprobs": None}],
        "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0},
    }
    return HttpResponse(200, body, {"Cache-Control": "no-store", "X-Cache": "HIT" if response.cached else "MISS"})


def _chunk(completion_id: str, created: int, delta: dict[str, Any], finish: str | None = None) -> bytes:
    chunk = {"id": completion_id, "object": "chat.completion.chunk", "created": created, "model": AGENT_MODEL,
             "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}]}
    return b"data: " + json.dumps(chunk, ensure_ascii=False, separators=(",", ":")).encode() + b"\n\n"


async def _agent_stream(request: ExecuteRequest, backend: ExecuteBackend, headers: Mapping[str, str],
                        cache: CacheStore | None, options: ExecuteOptions, heartbeat_seconds: float) -> StreamResponse:
    """The agent's answer as OpenAI chunks. Refusals before the run (no agent, the tools) raise here; a
    streamed answer is never cached (the contract's rule)."""
    await prepare(backend)
    plan = plan_execute(request, backend, headers=headers, cache=None)
    completion_id, created = _completion_id(), int(time.time())

    async def body() -> AsyncIterator[bytes]:
        yield _chunk(completion_id, created, {"role": "assistant", "content": ""})
        error: AgentError | None = None
        events = []
        deadline = Deadline(options.deadline_seconds)
        try:
            async with asyncio.timeout(options.deadline_seconds + 1.0):
                async for event in backend_events(backend, request.instruction, plan.selection, plan.model, deadline):
                    events.append(event)
                    message = event.message
                    if message is not None and message.type == "result" and message.tool is None and message.content:
                        yield _chunk(completion_id, created, {"content": message.content})
        except TimeoutError:
            error = AgentError(ErrorCode.UPSTREAM_TIMEOUT, f"The model did not finish within {options.deadline_seconds:g}s")
        except AgentError as exc:
            error = exc
        except Exception:
            logger.exception("unexpected error in a streamed chat completion")
            error = AgentError(ErrorCode.INTERNAL_ERROR, "Internal error while running the agent")
        if error is None and final_answer(transcript_of(events)) is None:
            error = AgentError(ErrorCode.NO_ANSWER, "The run ended without an answer.")
        if error is not None:
            failed = openai_error(error.code, error.message).body
            yield b"data: " + json.dumps(failed, ensure_ascii=False).encode() + b"\n\n"
        else:
            yield _chunk(completion_id, created, {}, "stop")
        yield DONE

    return StreamResponse(with_heartbeat(body(), heartbeat_seconds), base_headers=dict(OPENAI_STREAM_HEADERS))


# ----------------------------------------------------------------------------------- a model behind it


async def _forward(data: dict[str, Any], backend: ExecuteBackend, headers: Mapping[str, str],
                   cache: CacheStore | None, options: ExecuteOptions, heartbeat_seconds: float) -> HttpResponse | StreamResponse:
    forward = getattr(backend, "forward_chat", None)
    if forward is None:  # allowed_models() is empty without it, so this is unreachable; kept as a guard
        raise AgentError(ErrorCode.NOT_FOUND, "No model behind this deployment is served", details={"param": "model"})
    deadline = Deadline(options.deadline_seconds)
    if data.get("stream") is True:
        chunks = await forward(data, deadline, stream=True)
        return StreamResponse(with_heartbeat(chunks, heartbeat_seconds), base_headers=dict(OPENAI_STREAM_HEADERS))
    use_cache = cache is not None and is_cacheable(has_side_effects=False, headers=headers)
    # A backend whose answers depend on who serves them (the hub: its agents' identities) names them here.
    owner = getattr(backend, "forward_owner", None)
    scope = backend.cache_scope() + "|v1/chat/completions" + (f"|owner:{owner()}" if owner is not None else "")
    key = cache_key(instruction=json.dumps(data, sort_keys=True, ensure_ascii=False), tools=[], model=str(data["model"]),
                    scope=scope)
    if use_cache and cache is not None:
        try:
            hit = await cache.get(key)
        except Exception:  # a broken cache never fails a request
            logger.warning("cache read failed; forwarding uncached", exc_info=True)
            hit = None
        if hit is not None:
            return HttpResponse(200, json.loads(hit), {"Cache-Control": "no-store", "X-Cache": "HIT"})
    try:
        answer = await asyncio.wait_for(forward(data, deadline, stream=False), options.deadline_seconds + 1.0)
    except TimeoutError:
        raise AgentError(ErrorCode.UPSTREAM_TIMEOUT, f"The model did not answer within {options.deadline_seconds:g}s") from None
    if not isinstance(answer, dict):
        raise AgentError(ErrorCode.UPSTREAM_ERROR, "The model server's answer is not a JSON object")
    if use_cache and cache is not None:
        try:
            await cache.put(key, json.dumps(answer, ensure_ascii=False), options.cache_ttl_seconds)
        except Exception:
            logger.warning("cache write failed; the answer is still returned", exc_info=True)
    return HttpResponse(200, answer, {"Cache-Control": "no-store", "X-Cache": "MISS"})
