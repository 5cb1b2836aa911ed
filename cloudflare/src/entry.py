"""Cloudflare Python Worker: a thin adapter from the Workers fetch API to ``lmstudio_agent.endpoint.contract``.

It turns the Worker request into one call of core's one router, ``routes.route``, and the result into a
``Response``; ``/runs`` goes, once the router's runs preamble (``runs_refusal``) passed, to the run's Durable Object.
Routing, auth, validation, the cache rules, the deadline and the error shape all live in the core; what
is Worker-specific is reading ``self.env`` (vars, secrets, the KV binding) and the platform's limits.

With the ``BRIDGE_AGENTS`` secret and the ``AGENTS`` binding the Worker is also a bridge hub (do_bridge.py):
agents connect out to ``/bridge``, and ``/execute`` and ``/runs`` run on them (core's ``RelayBackend``)
instead of on an LM Studio behind a tunnel.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any
from urllib.parse import urlsplit

from workers import DurableObject, Response, WorkerEntrypoint

from do_bridge import AGENTS_BINDING, AgentObject, DirectoryObject, WorkerRelay, bridge_enabled, identities_of
from do_runs import DurableRunStore
from js_streams import _PUMPS, to_stream_response  # noqa: F401 - _PUMPS: the tests wait on it
from kv_cache import KVCacheStore
from lmstudio_agent.endpoint import contract
from lmstudio_agent.bridge.identities import IdentityError
from lmstudio_agent.bridge.relay import RelayBackend
from lmstudio_agent.endpoint.contract import presented_key
from lmstudio_agent.errors import AgentError, ErrorCode
from lmstudio_agent.endpoint.router import route, runs_refusal
from lmstudio_agent.endpoint.runs import RunService, new_run_id, run_id_of
from lmstudio_agent.endpoint.backend import EndpointService, EndpointSettings, SettingsCache, UnconfiguredBackend
from lmstudio_agent.endpoint.streaming import StreamResponse

logger = logging.getLogger("lmstudio_agent.worker")

# The client key is a secret (`wrangler secret put CLIENT_API_KEY`); the names EndpointSettings reads (vars
# such as LM_STUDIO_URL, the LM_STUDIO_TOKEN secret) are listed once, in lmstudio_agent.endpoint.backend.
CLIENT_KEY_NAME = "CLIENT_API_KEY"
KV_BINDING_NAME = "CACHE"
RUNS_BINDING_NAME = "RUNS"
RUN_ID_HEADER = "x-lmstudio-run-id"  # set by the Worker on requests it forwards to a run's Durable Object
# A Durable Object's alarm handler may run 15 minutes; the run keeps a minute for writing its end.
MAX_RUN_SECONDS = 14 * 60.0

# Waiting on the upstream costs no CPU time on Workers, but a Cloudflare Tunnel (and the edge in front of
# any origin) cuts a response that has not started after 100 s: keep the whole run well inside that.
MAX_DEADLINE_SECONDS = 90.0

INTERNAL_ERROR_BODY = '{"success":false,"error":"Internal error in the Worker","code":"INTERNAL_ERROR"}'

BRIDGE_PATH = "/bridge"

__all__ = ["AgentObject", "Default", "DirectoryObject", "RunObject"]  # the classes wrangler.toml binds


class Default(WorkerEntrypoint):
    """The Worker's fetch handler: ``GET /health`` (open) and ``POST /execute`` (keyed), with CORS."""

    async def fetch(self, request: Any) -> Response:
        """Never raises: every outcome, a bug included, is a response in the contract's shape."""
        try:
            if urlsplit(str(request.url)).path == BRIDGE_PATH:
                return await bridge_connect(request, self.env)
            if is_runs_path(request):
                return await forward_to_run(request, self.env)
            return to_response(await handle(request, self.env))
        except Exception:  # never a stack trace to a client, never the runtime's own error page
            logger.exception("unexpected error in the Worker")
        try:
            return to_response(contract.error_response(ErrorCode.INTERNAL_ERROR, "Internal error in the Worker"))
        except Exception:
            logger.exception("could not even build the error response")
            return Response(INTERNAL_ERROR_BODY, status=500, headers={"Content-Type": "application/json"})


async def handle(request: Any, env: Any) -> contract.HttpResponse | StreamResponse:
    """One Worker request through the shared contract (``route``: the JSON routes and the streamed execute).

    A streamed answer keeps the backend (its connection pool) open until the stream has been written."""
    method = request_method(request)
    path = urlsplit(str(request.url)).path
    headers = header_dict(request.headers)
    # The raw bytes, not text(): text() turns invalid UTF-8 into U+FFFD, and the contract answers 400 for it.
    body = None if method in ("GET", "HEAD", "OPTIONS") else await request.bytes()

    backend, options = build_backend(env)
    streaming = False
    try:
        result = await route(
            method,
            path,
            headers,
            body,
            backend=backend,
            api_key=env_value(env, CLIENT_KEY_NAME),
            cache=cache_store(env),
            options=options,
        )
        if isinstance(result, StreamResponse):
            streaming = True
            result.body = _closing_after(result.body, backend)
        return result
    finally:
        if not streaming:
            await _close_backend(backend)


async def _close_backend(backend: Any) -> None:
    close = getattr(backend, "aclose", None)
    if close is not None:
        await close()


async def _closing_after(body: Any, backend: Any) -> Any:
    try:
        async for chunk in body:
            yield chunk
    finally:
        await _close_backend(backend)


# What lives as long as the isolate: the settings, validated once (again only when a var or secret they are
# read from changed), and the service built from them (the tool registry, the detected tool-call mode of each
# model), rebuilt only when the settings change.
_settings = SettingsCache()
_service: EndpointService | None = None


def service_for(settings: EndpointSettings) -> EndpointService:
    """The isolate's service for ``settings``: the one already built when the settings are the same."""
    global _service
    if _service is None or _service.settings != settings:
        _service = EndpointService(settings)
    return _service


def build_backend(env: Any) -> tuple[contract.ExecuteBackend, contract.ExecuteOptions]:
    """This request's backend and limits from the Worker's vars and secrets.

    In bridge mode (:func:`do_bridge.bridge_enabled`) the backend is core's ``RelayBackend`` over the agents'
    Durable Objects. The HTTP client is per request (one isolate serves concurrent requests, and a Worker may not use one
    request's I/O objects in another); the service behind it lives as long as the isolate. A configuration
    error does not break ``/health`` and is reported only to an authenticated client, naming the settings but
    never their values (core's policy, :func:`lmstudio_agent.endpoint.backend.load_settings`, once per isolate).
    """
    if bridge_enabled(env):
        return bridge_backend(env)
    try:
        settings = _settings.load_settings(EnvView(env))
    except AgentError as exc:
        return UnconfiguredBackend(exc), contract.ExecuteOptions()
    options = settings.options(limit_seconds=MAX_DEADLINE_SECONDS)
    if options.deadline_seconds < settings.deadline_seconds:
        logger.warning("EXECUTE_DEADLINE_SECONDS capped at %gs on Workers", MAX_DEADLINE_SECONDS)
    return service_for(settings).backend(), options


def bridge_backend(env: Any) -> tuple[contract.ExecuteBackend, contract.ExecuteOptions]:
    """The relay over the agents' objects, with the deployment's deadline and cache TTL (LM_STUDIO_URL and
    the other LM Studio settings are not needed: the agents reach their model servers themselves)."""
    try:
        identities = identities_of(env)
    except IdentityError as exc:
        logger.error("BRIDGE_AGENTS is malformed: %s", exc)
        return UnconfiguredBackend(AgentError(ErrorCode.INTERNAL_ERROR, "The bridge is misconfigured: BRIDGE_AGENTS")), \
            contract.ExecuteOptions()
    try:
        options = _settings.load_settings(EnvView(env)).options(limit_seconds=MAX_DEADLINE_SECONDS)
    except AgentError:
        options = contract.ExecuteOptions()
    assert identities is not None  # bridge_enabled checked the secret is set
    return RelayBackend(WorkerRelay(env), identities=identities, default_model=env_value(env, "BRIDGE_MODEL") or "",
                        scope="worker-bridge"), options


async def bridge_connect(request: Any, env: Any) -> Response:
    """``/bridge``: an agent's WebSocket, handed (once its token is checked) to the object named by the
    token's ``agent_id``, which accepts it. Refusals are the contract's 401/403 JSON, as on the process hub."""
    if not bridge_enabled(env):
        return to_response(contract.error_response(ErrorCode.NOT_FOUND, "The bridge is not configured on this Worker"))
    headers = header_dict(request.headers)
    if (headers.get("upgrade") or "").lower() != "websocket":
        return to_response(contract.error_response(ErrorCode.INVALID_REQUEST, "Expected a WebSocket upgrade on /bridge"))
    try:
        key = presented_key(headers)
        identities = identities_of(env)
    except AgentError as exc:
        return to_response(contract.error_response(exc.code, exc.message, {"WWW-Authenticate": "Bearer"}))
    except IdentityError as exc:
        logger.error("BRIDGE_AGENTS is malformed: %s", exc)
        return to_response(contract.error_response(ErrorCode.INTERNAL_ERROR, "The bridge is misconfigured"))
    if key is None:
        return to_response(contract.error_response(ErrorCode.UNAUTHORIZED, "Missing token: send 'Authorization: Bearer <token>'",
                                                   {"WWW-Authenticate": "Bearer"}))
    identity = identities.authenticate(key) if identities is not None else None
    if identity is None or identity.agent_id is None:
        return to_response(contract.error_response(ErrorCode.FORBIDDEN, "Invalid token"))
    namespace = getattr(env, AGENTS_BINDING)
    return await namespace.get(namespace.idFromName(identity.agent_id)).fetch(request)


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


def header_dict(headers: Any) -> contract.HeaderMap:
    """Request headers as core's :func:`~lmstudio_agent.endpoint.contract.header_map` (once per request: the router
    takes it as it is), from the SDK's ``http.client.HTTPMessage`` or a raw JS ``Headers``."""
    pairs = headers.items() if hasattr(headers, "items") else headers
    return contract.header_map([(str(key), str(value)) for key, value in pairs])


def to_response(result: contract.HttpResponse | StreamResponse) -> Response:
    if isinstance(result, StreamResponse):
        return to_stream_response(result)
    headers = result.all_headers()
    if result.status in contract.NULL_BODY_STATUSES:
        headers.pop("Content-Type", None)
        return Response(None, status=result.status, headers=headers)
    return Response(result.json(), status=result.status, headers=headers)


# ------------------------------------------------------------------------------------------- async runs


def is_runs_path(request: Any) -> bool:
    path = urlsplit(str(request.url)).path
    return path == "/runs" or path.startswith("/runs/")


async def forward_to_run(request: Any, env: Any) -> Response:
    """``/runs`` on the Worker: the key is checked here, then the request goes to the run's own Durable
    Object (a new id for ``POST /runs``), whose answer (a stream, for the events) is passed through."""
    method = request_method(request)
    path = urlsplit(str(request.url)).path
    headers = header_dict(request.headers)
    refused = runs_refusal(method, headers, env_value(env, CLIENT_KEY_NAME))  # the router's runs preamble
    if refused is not None:
        return to_response(refused)
    namespace = getattr(env, RUNS_BINDING_NAME, None)
    if namespace is None:
        return to_response(contract.error_response(ErrorCode.NOT_FOUND, "Async runs are not configured on this Worker"))
    run_id = new_run_id() if path == "/runs" and method == "POST" else run_id_of(path)
    if run_id is None:
        if path == "/runs":  # the runs service answers 405 with Allow
            run_id = new_run_id()
        else:
            return to_response(contract.error_response(ErrorCode.NOT_FOUND, f"No run {path[6:70]!r}"))
    body = None if method in ("GET", "HEAD") else await request.text()
    stub = namespace.get(namespace.idFromName(run_id))
    answer = await stub.fetch(str(request.url), method=method, headers={**headers, RUN_ID_HEADER: run_id}, body=body)
    return Response(answer.body, status=answer.status, headers=dict(answer.headers.items()))


class RunObject(DurableObject):
    """One async run: ``fetch`` serves its routes (through core's RunService over this object's storage),
    ``alarm`` runs it. Reached only through the Worker (``RUNS`` binding), which has checked the key."""

    def _service(self, run_id: str) -> tuple[RunService, Any]:
        backend, options = build_backend(self.env)

        async def launch(_run_id: str) -> None:
            await self.ctx.storage.setAlarm(int(time.time() * 1000))

        service = RunService(DurableRunStore(self.ctx.storage), backend, options=options, launcher=launch,
                             run_deadline_seconds=MAX_RUN_SECONDS, new_run_id=lambda: run_id)
        return service, backend

    async def fetch(self, request: Any) -> Response:
        headers = header_dict(request.headers)
        run_id = headers.get(RUN_ID_HEADER, "")
        method = request_method(request)
        body = None if method in ("GET", "HEAD") else await request.text()
        service, backend = self._service(run_id)
        streaming = False
        try:
            result = await service.handle(method, urlsplit(str(request.url)).path, headers, body)
            if isinstance(result, StreamResponse):
                streaming = True
                result.body = _closing_after(result.body, backend)
            return to_response(result)
        except Exception:
            logger.exception("unexpected error in a run's Durable Object")
            return to_response(contract.error_response(ErrorCode.INTERNAL_ERROR, "Internal error in the run"))
        finally:
            if not streaming:
                await _close_backend(backend)

    async def alarm(self, *args: Any) -> None:
        """Run the queued run; the next alarm (at its expiry) deletes it."""
        raw = await self.ctx.storage.get("run")
        if not isinstance(raw, str):
            return
        stored = json.loads(raw)
        if stored["status"] != "queued" or stored["expires_at"] <= time.time():
            await self.ctx.storage.deleteAll()  # expired (or a stray alarm after the run): forget it
            return
        service, backend = self._service(stored["run_id"])
        try:
            await service.execute(stored["run_id"])
        finally:
            await _close_backend(backend)
            await self.ctx.storage.setAlarm(int(stored["expires_at"] * 1000))
