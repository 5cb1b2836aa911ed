"""Cloudflare Python Worker: a thin adapter from the Workers fetch API to ``lmstudio_agent.contract``.

It turns the Worker request into one ``contract.handle_request`` call and the result into a ``Response``.
Routing, auth, validation, the cache rules, the deadline and the error shape all live in the core; what
is Worker-specific is reading ``self.env`` (vars, secrets, the KV binding) and the platform's limits.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any
from urllib.parse import urlsplit

from pydantic import ValidationError
from workers import Response, WorkerEntrypoint

from kv_cache import KVCacheStore
from lmstudio_agent import contract
from lmstudio_agent.errors import AgentError, ErrorCode
from lmstudio_agent.service import AgentBackend, EndpointSettings

logger = logging.getLogger("lmstudio_agent.worker")

# The client key is a secret (`wrangler secret put CLIENT_API_KEY`); the names EndpointSettings reads (vars
# such as LM_STUDIO_URL, the LM_STUDIO_TOKEN secret) are listed once, in lmstudio_agent.service.
CLIENT_KEY_NAME = "CLIENT_API_KEY"
KV_BINDING_NAME = "CACHE"

# Waiting on the upstream costs no CPU time on Workers, but a Cloudflare Tunnel (and the edge in front of
# any origin) cuts a response that has not started after 100 s: keep the whole run well inside that.
MAX_DEADLINE_SECONDS = 90.0

INTERNAL_ERROR_BODY = '{"success":false,"error":"Internal error in the Worker","code":"INTERNAL_ERROR"}'

# Statuses whose responses must not carry a body (the Fetch spec's "null body status"; JS throws otherwise).
NULL_BODY_STATUSES = frozenset({101, 204, 205, 304})


class Default(WorkerEntrypoint):
    """The Worker's fetch handler: ``GET /health`` (open) and ``POST /execute`` (keyed), with CORS."""

    async def fetch(self, request: Any) -> Response:
        """Never raises: every outcome, a bug included, is a response in the contract's shape."""
        try:
            return to_response(await handle(request, self.env))
        except Exception:  # never a stack trace to a client, never the runtime's own error page
            logger.exception("unexpected error in the Worker")
        try:
            return to_response(contract.error_response(ErrorCode.INTERNAL_ERROR, "Internal error in the Worker"))
        except Exception:
            logger.exception("could not even build the error response")
            return Response(INTERNAL_ERROR_BODY, status=500, headers={"Content-Type": "application/json"})


async def handle(request: Any, env: Any) -> contract.HttpResponse:
    """One Worker request through the shared contract."""
    method = request_method(request)
    path = urlsplit(str(request.url)).path
    headers = header_dict(request.headers)
    # The raw bytes, not text(): text() turns invalid UTF-8 into U+FFFD, and the contract answers 400 for it.
    body = None if method in ("GET", "HEAD", "OPTIONS") else await request.bytes()

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


def build_backend(env: Any) -> tuple[contract.ExecuteBackend, contract.ExecuteOptions]:
    """The agent backend and limits from the Worker's vars and secrets.

    Built per request: one isolate serves concurrent requests, and a Worker may not use one request's I/O
    objects in another. A configuration error does not break ``/health`` and is reported only to an
    authenticated client, naming the settings but never their values (a secret may be among them).
    """
    try:
        settings = EndpointSettings.from_env(EnvView(env))
    except ValidationError as exc:
        problem = "invalid " + ", ".join(sorted({".".join(map(str, e["loc"])) or "settings" for e in exc.errors()}))
        logger.error("the Worker's configuration is invalid: %s", problem)
        return UnconfiguredBackend(problem), contract.ExecuteOptions()
    options = settings.options()
    if options.deadline_seconds > MAX_DEADLINE_SECONDS:
        logger.warning("EXECUTE_DEADLINE_SECONDS capped at %gs on Workers", MAX_DEADLINE_SECONDS)
        options = dataclasses.replace(options, deadline_seconds=MAX_DEADLINE_SECONDS)
    return AgentBackend(settings), options


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
    """The request's method: the SDK gives an ``http.HTTPMethod`` (a KeyError for one it lacks), JS a string.

    Not upper-cased here: the Fetch API has already normalised the six standard methods (``post`` arrives as
    ``POST``); any other is case-sensitive, as the contract treats it.
    """
    try:
        method = request.method
    except KeyError:
        method = request.js_object.method
    return str(getattr(method, "value", method))


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


class UnconfiguredBackend:
    """Stands in for the agent when the Worker's vars are invalid: every execute answers INTERNAL_ERROR."""

    default_model = ""

    def __init__(self, problem: str) -> None:
        self._problem = problem

    def cache_scope(self) -> str:
        return "unconfigured"

    def select_tools(self, names: list[str]) -> contract.ToolSelection:
        raise AgentError(ErrorCode.INTERNAL_ERROR, f"The Worker is not configured: {self._problem}")

    async def run(self, *args: Any, **kwargs: Any) -> list:
        raise AgentError(ErrorCode.INTERNAL_ERROR, f"The Worker is not configured: {self._problem}")

