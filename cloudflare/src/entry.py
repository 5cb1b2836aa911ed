"""Cloudflare Python Worker: a thin adapter from the Workers fetch API to ``lmstudio_agent.contract``.

It turns the Worker request into one ``contract.handle_request`` call and the result into a ``Response``.
Routing, auth, validation, the cache rules, the deadline and the error shape all live in the core; what
is Worker-specific is reading ``self.env`` (vars, secrets, the KV binding) and the platform's limits.
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import urlsplit

from workers import Response, WorkerEntrypoint

from kv_cache import KVCacheStore
from lmstudio_agent import contract
from lmstudio_agent.errors import AgentError, ErrorCode
from lmstudio_agent.service import EndpointService, EndpointSettings, UnconfiguredBackend, load_settings

logger = logging.getLogger("lmstudio_agent.worker")

# The client key is a secret (`wrangler secret put CLIENT_API_KEY`); the names EndpointSettings reads (vars
# such as LM_STUDIO_URL, the LM_STUDIO_TOKEN secret) are listed once, in lmstudio_agent.service.
CLIENT_KEY_NAME = "CLIENT_API_KEY"
KV_BINDING_NAME = "CACHE"

# Waiting on the upstream costs no CPU time on Workers, but a Cloudflare Tunnel (and the edge in front of
# any origin) cuts a response that has not started after 100 s: keep the whole run well inside that.
MAX_DEADLINE_SECONDS = 90.0

# Statuses whose responses must not carry a body (the Fetch spec's "null body status"; JS throws otherwise).
NULL_BODY_STATUSES = frozenset({101, 204, 205, 304})


class Default(WorkerEntrypoint):
    """The Worker's fetch handler: ``GET /health`` (open) and ``POST /execute`` (keyed), with CORS."""

    async def fetch(self, request: Any) -> Response:
        try:
            result = await handle(request, self.env)
        except Exception:  # never a stack trace to a client
            logger.exception("unexpected error in the Worker")
            result = contract.error_response(ErrorCode.INTERNAL_ERROR, "Internal error in the Worker")
        return to_response(result)


async def handle(request: Any, env: Any) -> contract.HttpResponse:
    """One Worker request through the shared contract."""
    method = request_method(request)
    path = urlsplit(str(request.url)).path
    headers = header_dict(request.headers)
    body = None if method in ("GET", "HEAD", "OPTIONS") else await request.text()

    backend, options = build_backend(env)
    try:
        return await contract.handle_request(
            method,
            path,
            headers,
            body,
            backend=backend,
            api_key=env_value(env, CLIENT_KEY_NAME),
            cache=cache_store(env),
            options=options,
        )
    finally:
        close = getattr(backend, "aclose", None)
        if close is not None:
            await close()


# What lives as long as the isolate: the service built from the current settings (the tool registry, the
# detected tool-call mode of each model). Rebuilt only when the settings change.
_service: EndpointService | None = None


def service_for(settings: EndpointSettings) -> EndpointService:
    """The isolate's service for ``settings``: the one already built when the settings are the same."""
    global _service
    if _service is None or _service.settings != settings:
        _service = EndpointService(settings)
    return _service


def build_backend(env: Any) -> tuple[contract.ExecuteBackend, contract.ExecuteOptions]:
    """This request's backend and limits from the Worker's vars and secrets.

    The HTTP client is per request (one isolate serves concurrent requests, and a Worker may not use one
    request's I/O objects in another); the service behind it lives as long as the isolate. A configuration
    error does not break ``/health`` and is reported only to an authenticated client, naming the settings but
    never their values (core's policy, :func:`lmstudio_agent.service.load_settings`).
    """
    try:
        settings = load_settings(EnvView(env))
    except AgentError as exc:
        return UnconfiguredBackend(exc), contract.ExecuteOptions()
    options = settings.options(limit_seconds=MAX_DEADLINE_SECONDS)
    if options.deadline_seconds < settings.deadline_seconds:
        logger.warning("EXECUTE_DEADLINE_SECONDS capped at %gs on Workers", MAX_DEADLINE_SECONDS)
    return service_for(settings).backend(), options


class EnvView:
    """The Worker's vars and secrets read by name, as ``EndpointSettings.from_env`` reads a mapping.

    ``self.env`` is a JS object: its names cannot be listed from Python, only looked up.
    """

    def __init__(self, env: Any) -> None:
        self._env = env

    def get(self, name: str, default: str | None = None) -> str | None:
        value = env_value(self._env, name)
        return default if value is None else value

    def __getitem__(self, name: str) -> str:
        value = env_value(self._env, name)
        if value is None:
            raise KeyError(name)
        return value

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and env_value(self._env, name) is not None


def cache_store(env: Any) -> KVCacheStore | None:
    """The KV-backed cache, or None (no caching) when the Worker has no ``CACHE`` binding."""
    namespace = getattr(env, KV_BINDING_NAME, None)
    return KVCacheStore(namespace) if namespace is not None else None


def env_value(env: Any, name: str) -> str | None:
    """A var or secret as a string; None when unset (a var may also arrive as a JSON number or bool)."""
    value = getattr(env, name, None)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (str, int, float)):
        text = str(value).strip()
        return text or None
    return None


def request_method(request: Any) -> str:
    """The request's method: the SDK gives an ``http.HTTPMethod`` (a KeyError for one it lacks), JS a string."""
    try:
        method = request.method
    except KeyError:
        method = request.js_object.method
    return str(getattr(method, "value", method)).upper()


def header_dict(headers: Any) -> dict[str, str]:
    """Request headers as a dict: from the SDK's ``http.client.HTTPMessage`` or a raw JS ``Headers``."""
    pairs = headers.items() if hasattr(headers, "items") else headers
    return {str(key).lower(): str(value) for key, value in pairs}


def to_response(result: contract.HttpResponse) -> Response:
    headers = result.all_headers()
    if result.status in NULL_BODY_STATUSES:
        headers.pop("Content-Type", None)
        return Response(None, status=result.status, headers=headers)
    return Response(result.json(), status=result.status, headers=headers)
