"""The one router: the whole HTTP API in one call, for every adapter (the hub, the Worker, the Lambda).

:func:`route` serves ``GET /health``, ``POST /execute`` (answered as JSON, or streamed by :mod:`.streaming`
when the request asks: ``Accept: text/event-stream``, ``"stream": true`` or the AI SDK's ``useChat`` body),
the OpenAI-compatible routes under ``/v1/`` (:mod:`.openai_api`) and the async runs under ``/runs``
(:mod:`.runs`). A request's headers are combined once (:func:`~lmstudio_agent.endpoint.contract.header_map`) and an
execute body is read and validated once, whichever way it is answered. An adapter that cannot stream (the
Lambda) sends a :class:`~lmstudio_agent.endpoint.streaming.StreamResponse` whole once it is written; one that
forwards ``/runs`` elsewhere (the Worker, to a Durable Object) answers its preamble with
:func:`runs_refusal` first. The answer is an :class:`~lmstudio_agent.endpoint.contract.HttpResponse` or a
:class:`~lmstudio_agent.endpoint.streaming.StreamResponse`.
"""

from __future__ import annotations

from collections.abc import Mapping

from .cache import CacheStore
from .contract import (CORS_HEADERS, Body, ExecuteBackend, ExecuteOptions, Headers, HttpResponse, KeySource,
                       execute_request_from, header_map, health_response, key_refusal, read_json_object, route_refusal)
from .conversation import is_chat_body
from ..errors import AgentError
from .openai_api import handle_openai
from .pipeline import execute_error, execute_response
from .runs import RunService
from .streaming import HEARTBEAT_SECONDS, StreamResponse, stream_answer, stream_request_from, wants_stream

RUNS_CORS_METHODS = "GET, POST, DELETE, OPTIONS"
# The contract's own routes and the one method each takes (the OpenAI routes and the runs have their own).
CONTRACT_ROUTES = {"/health": "GET", "/execute": "POST"}


async def route(
    method: str,
    path: str,
    headers: Headers,
    body: Body,
    *,
    backend: ExecuteBackend,
    api_key: KeySource,
    cache: CacheStore | None = None,
    options: ExecuteOptions | None = None,
    runs: RunService | None = None,
    heartbeat_seconds: float = HEARTBEAT_SECONDS,
    authenticated: bool = False,
    json_only: bool = False,
) -> HttpResponse | StreamResponse:
    """Route one request (see the module docstring). Without ``runs``, ``/runs`` is 404 as any unknown path.
    Methods are case-sensitive (RFC 9110): ``post`` is not ``POST`` and gets a 405.

    Args:
        method: The HTTP method (case-sensitive).
        path: The request path (leading and trailing ``/`` do not matter).
        headers: The request headers: a mapping or (name, value) pairs (a credential sent twice is refused).
        body: The raw request body.
        backend: What runs the agent.
        api_key: The client key the deployment expects, or a function that looks it up (called only for a
            keyed route).
        cache: The cache store (None: no cache).
        options: The deployment's limits (default: :class:`~lmstudio_agent.endpoint.contract.ExecuteOptions`'s).
        runs: The async runs' service (None: no ``/runs``).
        heartbeat_seconds: Silence after which a stream sends a comment line.
        authenticated: The platform already authenticated the caller (a Lambda invoked directly, which IAM
            authorised): no client key is asked for ``/execute``.
        json_only: Only the contract's JSON routes (``/health``, ``/execute`` answered as JSON): no stream, no
            ``/v1/``, no ``/runs`` (:func:`~lmstudio_agent.endpoint.contract.handle_request`).
    """
    options = options or ExecuteOptions()
    headers = header_map(headers)  # once: every step below takes this map
    path = "/" + path.strip("/")
    if not json_only and path.startswith("/v1/"):
        return await handle_openai(method, path, headers, body, backend=backend, api_key=api_key, cache=cache,
                                   options=options, heartbeat_seconds=heartbeat_seconds)
    if not json_only and runs is not None and (path == "/runs" or path.startswith("/runs/")):
        refused = runs_refusal(method, headers, api_key)
        return refused if refused is not None else await runs.handle(method, path, headers, body)
    refused = route_refusal(method, path, CONTRACT_ROUTES)
    if refused is not None:
        return refused
    if path == "/health":
        return health_response()
    if not authenticated:
        refused = key_refusal(headers, api_key)
        if refused is not None:
            return refused
    return await execute_route(body, headers, backend, cache=cache, options=options,
                               heartbeat_seconds=heartbeat_seconds, streams=not json_only)


async def execute_route(
    body: Body,
    headers: Mapping[str, str],
    backend: ExecuteBackend,
    *,
    cache: CacheStore | None = None,
    options: ExecuteOptions | None = None,
    heartbeat_seconds: float = HEARTBEAT_SECONDS,
    streams: bool = True,
) -> HttpResponse | StreamResponse:
    """``POST /execute`` after auth: the body read once and validated once (into an
    :class:`~lmstudio_agent.endpoint.contract.ExecuteRequest`), then answered as a stream when it asks for one (and
    ``streams``), else as JSON. Never raises.

    Args:
        body: The raw request body.
        headers: The request headers (lower-case names, :func:`~lmstudio_agent.endpoint.contract.header_map`'s).
        backend: What runs the agent.
        cache: The cache store (None: no cache).
        options: The deployment's limits (default: :class:`~lmstudio_agent.endpoint.contract.ExecuteOptions`'s).
        heartbeat_seconds: Silence after which a stream sends a comment line.
        streams: Whether the request may be answered as a stream.
    """
    options = options or ExecuteOptions()
    try:
        data = read_json_object(body, options.max_body_bytes)
        stream = streams and (wants_stream(headers) or data.get("stream") is True or is_chat_body(data))
        request = stream_request_from(data) if stream else execute_request_from(data)
    except AgentError as exc:
        return execute_error(exc)
    if stream:
        return await stream_answer(request, headers, backend, cache=cache, options=options,
                                   heartbeat_seconds=heartbeat_seconds)
    return await execute_response(request, headers, backend, cache=cache, options=options)


def runs_refusal(method: str, headers: Headers, api_key: KeySource) -> HttpResponse | None:
    """The preamble of every ``/runs`` route, wherever the runs are served (here, or the Worker's Durable
    Objects): a CORS preflight's 204, or the contract's 401/403 for a wrong key (looked up only now); None: go on.

    Args:
        method: The HTTP method.
        headers: The request headers.
        api_key: The key the deployment expects, or a function that looks it up.
    """
    if method == "OPTIONS":
        allow = CORS_HEADERS["Access-Control-Allow-Headers"] + ", Last-Event-ID"
        return HttpResponse(204, {}, {"Access-Control-Allow-Methods": RUNS_CORS_METHODS,
                                      "Access-Control-Allow-Headers": allow})
    return key_refusal(headers, api_key)
