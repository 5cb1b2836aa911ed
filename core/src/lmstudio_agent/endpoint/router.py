"""The whole HTTP API in one call, for every adapter (the hub, the Worker, the Lambda).

:func:`route` adds to :func:`lmstudio_agent.endpoint.contract.handle_request` the streamed ``POST /execute``
(:mod:`.streaming`: ``Accept: text/event-stream``, ``"stream": true`` or the AI SDK's ``useChat`` body), the
OpenAI-compatible routes under ``/v1/`` (:mod:`.openai_api`) and the async runs under ``/runs``
(:mod:`.runs`); everything else is the contract's. An adapter that cannot stream (the Lambda) sends a
:class:`~lmstudio_agent.endpoint.streaming.StreamResponse` whole once it is written.
The answer is an :class:`~lmstudio_agent.endpoint.contract.HttpResponse` or a
:class:`~lmstudio_agent.endpoint.streaming.StreamResponse`.
"""

from __future__ import annotations

from .cache import CacheStore
from .contract import (CORS_HEADERS, Body, ExecuteBackend, ExecuteOptions, Headers, HttpResponse, KeySource,
                       handle_request, header_map, key_refusal)
from .openai_api import handle_openai
from .runs import RunService
from .streaming import HEARTBEAT_SECONDS, StreamResponse, body_asks_stream, handle_execute_stream, wants_stream

RUNS_CORS_METHODS = "GET, POST, DELETE, OPTIONS"


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
) -> HttpResponse | StreamResponse:
    """Route one request (see the module docstring). Without ``runs``, ``/runs`` is 404 as any unknown path.
    Methods are case-sensitive, as in :func:`~lmstudio_agent.endpoint.contract.handle_request`."""
    raw_headers = headers  # the contract applies the rule for a credential sent twice to the raw pairs
    headers = header_map(headers)
    path = "/" + path.strip("/")
    if path == "/execute" and method == "POST" and (wants_stream(headers) or body_asks_stream(body)):
        refused = check_key(raw_headers, api_key)
        if refused is not None:
            return refused
        return await handle_execute_stream(body, headers, backend, cache=cache, options=options,
                                           heartbeat_seconds=heartbeat_seconds)
    if path.startswith("/v1/"):
        return await handle_openai(method, path, raw_headers, body, backend=backend, api_key=api_key, cache=cache,
                                   options=options, heartbeat_seconds=heartbeat_seconds)
    if runs is not None and (path == "/runs" or path.startswith("/runs/")):
        if method == "OPTIONS":
            allow = CORS_HEADERS["Access-Control-Allow-Headers"] + ", Last-Event-ID"
            return HttpResponse(204, {}, {"Access-Control-Allow-Methods": RUNS_CORS_METHODS,
                                          "Access-Control-Allow-Headers": allow})
        refused = check_key(raw_headers, api_key)
        if refused is not None:
            return refused
        return await runs.handle(method, path, headers, body)
    return await handle_request(method, path, raw_headers, body, backend=backend, api_key=api_key, cache=cache,
                                options=options)


def check_key(headers: Headers, api_key: KeySource) -> HttpResponse | None:
    """The contract's key check (None: the key is right; else the 401/403 to send), with the key looked up
    (a secret store) only now. Adapters that forward a route elsewhere (the Worker's runs, in Durable
    Objects) check the key with this before forwarding."""
    return key_refusal(headers, api_key)
