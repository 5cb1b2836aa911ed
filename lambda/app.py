"""AWS Lambda entry point: a thin adapter from API Gateway (or a direct invoke) to the shared contract.

Every request, whatever its shape, takes one path: the event becomes one call of core's one router,
``routes.route`` (a direct invoke, already authorised by IAM, as its JSON-only ``POST /execute``), and its
answer a proxy result, as in the Worker. Every rule (routing, body limits, validation, auth, the tool
allow-list, the cache rules, the deadline, the error shape) lives in ``lmstudio_agent.endpoint.contract``; this module
only translates events, reads secrets and wires the DynamoDB cache store. Heavy imports (boto3, the agent
loop) wait for the first request that needs them.

With ``BRIDGE_AGENTS_SECRET`` set the stack is also a bridge hub (ws_bridge.py): agents connect out to the
WebSocket API (:func:`bridge_handler` answers its routes) and ``/execute`` and ``/runs`` run on them through
core's ``RelayBackend``, in place of an LM Studio behind a tunnel.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import dataclasses
import hashlib
import json
import os
import warnings
from typing import Any
from collections.abc import Mapping

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.logging.utils import copy_config_to_registered_loggers
from aws_lambda_powertools.metrics import MetricUnit

from lmstudio_agent.endpoint import contract
from lmstudio_agent.errors import AgentError, ErrorCode

logger = Logger()
metrics = Metrics(namespace=os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "LMStudioAgent"))
# Core's own log lines (cache fallbacks, upstream failures) get the same JSON shape and correlation id.
copy_config_to_registered_loggers(source_logger=logger, include={"lmstudio_agent"})
# /health publishes no metric by design; without this every health check logs a warning.
warnings.filterwarnings("ignore", message="No application metrics to publish")

SECRET_MAX_AGE_SECONDS = int(os.environ.get("SECRET_MAX_AGE_SECONDS", "300"))
# Time kept back from the function's remaining time: core's backstop (+1 s) and writing the response.
DEADLINE_MARGIN_SECONDS = 3.0


# ------------------------------------------------------------------------------------------ the runtime


@dataclasses.dataclass
class _Runtime:
    """What one container keeps between invocations: the endpoint service (settings, tools, detected modes),
    one backend over it (a container runs one request at a time, on one event loop, so its connection pool
    is reused) and the cache store."""

    settings: Any
    backend: Any
    cache: Any
    token_digest: str
    runs: Any = None


_runtime: _Runtime | None = None
_secrets: Any = None
_loop: asyncio.AbstractEventLoop | None = None


def _run(coroutine: Any) -> Any:
    """Run a coroutine on the container's one event loop, so the backend's HTTP connections survive between
    invocations (``asyncio.run`` would close the loop they belong to)."""
    global _loop
    if _loop is None or _loop.is_closed():
        _loop = asyncio.new_event_loop()
    return _loop.run_until_complete(coroutine)


def _secret(env_name: str) -> str | None:
    """The secret named by ``env_name``, through Powertools' cached provider (re-read after max_age)."""
    name = os.environ.get(env_name)
    if not name:
        return None
    global _secrets
    if _secrets is None:
        from botocore.config import Config
        from aws_lambda_powertools.utilities.parameters import SecretsProvider

        _secrets = SecretsProvider(
            boto_config=Config(connect_timeout=2, read_timeout=3, retries={"max_attempts": 2, "mode": "standard"})
        )
    try:
        value = _secrets.get(name, max_age=SECRET_MAX_AGE_SECONDS)
    except Exception:
        logger.exception("could not read a secret", extra={"secret_env": env_name})
        raise AgentError(ErrorCode.INTERNAL_ERROR, "The endpoint is misconfigured: a secret could not be read") from None
    return value.strip() if isinstance(value, str) and value.strip() else None


def _client_key() -> str | None:
    return _secret("CLIENT_API_KEY_SECRET")


def _get_runtime() -> _Runtime:
    """The container's runtime; rebuilt only when the LM Studio token changed (a rotated secret).

    A bad configuration (a secret that cannot be read, an invalid setting) is core's policy: the backend answers
    every authenticated execute with INTERNAL_ERROR naming the problem, and ``/health`` keeps working.
    """
    global _runtime
    from lmstudio_agent.endpoint.backend import EndpointService, UnconfiguredBackend, load_settings

    if os.environ.get("BRIDGE_AGENTS_SECRET"):
        return _bridge_runtime()
    try:
        token = _secret("LM_STUDIO_TOKEN_SECRET")
    except AgentError as exc:
        return _Runtime(None, UnconfiguredBackend(exc), None, "")
    digest = hashlib.sha256((token or "").encode()).hexdigest()
    if _runtime is not None and _runtime.token_digest == digest:
        return _runtime

    from pydantic import SecretStr

    from dynamo_cache import DynamoCacheStore

    # The token comes from Secrets Manager only; an LM_STUDIO_TOKEN variable is never trusted here.
    try:
        settings = load_settings(os.environ, lm_studio_token=SecretStr(token) if token else None)
    except AgentError as exc:
        return _Runtime(None, UnconfiguredBackend(exc), None, "")
    table = os.environ.get("CACHE_TABLE")
    try:
        mcp_servers = _mcp_servers()
    except AgentError as exc:
        return _Runtime(None, UnconfiguredBackend(exc), None, "")
    previous = getattr(getattr(_runtime, "backend", None), "service", None)
    if previous is not None and previous.mcp_servers is not None:
        _run(previous.mcp_servers.stop())  # a rotated token: the new runtime connects its own
    backend = EndpointService(settings, mcp_servers=mcp_servers).backend()
    _runtime = _Runtime(settings, backend, DynamoCacheStore(table) if table else None, digest,
                        _run_service(backend, settings))
    return _runtime


def _bridge_identities() -> Any:
    """The agents the bridge admits: the BRIDGE_AGENTS secret (Powertools' cache, re-read after max_age)."""
    from lmstudio_agent.bridge.identities import Identities, parse_identities

    text = _secret("BRIDGE_AGENTS_SECRET")
    return Identities(tuple(parse_identities(text or "", source="BRIDGE_AGENTS secret")))


def _bridge_runtime() -> _Runtime:
    """The bridge hub's runtime: core's RelayBackend over the connections and tasks tables (ws_bridge.py);
    rebuilt when the identities secret changes. The LM Studio settings are not needed: agents reach theirs."""
    global _runtime
    from lmstudio_agent.bridge.identities import IdentityError
    from lmstudio_agent.bridge.relay import RelayBackend
    from lmstudio_agent.endpoint.backend import EndpointSettings, UnconfiguredBackend

    try:
        identities = _bridge_identities()
    except AgentError as exc:
        return _Runtime(None, UnconfiguredBackend(exc), None, "")
    except IdentityError as exc:
        logger.error("the BRIDGE_AGENTS secret is malformed", extra={"reason": str(exc)})
        return _Runtime(None, UnconfiguredBackend(AgentError(ErrorCode.INTERNAL_ERROR,
                                                             "The bridge is misconfigured: BRIDGE_AGENTS")), None, "")
    digest = hashlib.sha256(repr(identities).encode() + str([a.fingerprint() for a in identities.agents]).encode()).hexdigest()
    if _runtime is not None and _runtime.token_digest == digest:
        return _runtime
    from dynamo_cache import DynamoCacheStore
    from ws_bridge import AwsRelay, Tables, callback_url

    try:
        settings = EndpointSettings.from_env({**os.environ, "LM_STUDIO_URL": os.environ.get("LM_STUDIO_URL") or "http://bridge.invalid/v1"})
    except Exception:
        settings = None
    backend = RelayBackend(AwsRelay(Tables(), callback_url()), identities=identities,
                           default_model=os.environ.get("BRIDGE_MODEL", ""), scope="aws-bridge")
    table = os.environ.get("CACHE_TABLE")
    _runtime = _Runtime(settings, backend, DynamoCacheStore(table) if table else None, digest,
                        _run_service(backend, settings) if settings is not None else None)
    return _runtime


def bridge_handler(event: Any, context: Any) -> dict[str, Any]:
    """The bridge's WebSocket routes (``$connect``, ``$default``, ``$disconnect``): ws_bridge.handler, with the
    identities read through this container's cached secret."""
    from ws_bridge import handler

    return handler(event, context, identities=_bridge_identities)


def _mcp_servers() -> Any:
    """MCP servers over streamable HTTP, when ``MCP_CONFIG_SECRET`` names a secret holding an mcp.json.

    A Lambda cannot keep child processes between invocations, so stdio servers are refused. The SDK is in the
    artifact only when built with ``LAMBDA_MCP=1`` (lambda/requirements-mcp.txt), and imported only here.
    """
    text = _secret("MCP_CONFIG_SECRET")
    if not text:
        return None
    try:
        from lmstudio_agent.mcp import MCPServers

        return MCPServers(json.loads(text), allow_stdio=False, connect_timeout=10.0)
    except ModuleNotFoundError:
        logger.error("MCP_CONFIG_SECRET is set but the artifact has no MCP SDK: build it with LAMBDA_MCP=1")
        raise AgentError(ErrorCode.INTERNAL_ERROR,
                         "The endpoint is misconfigured: MCP servers are configured but not in this build") from None
    except (ValueError, AgentError) as exc:  # never the secret's text: only what is wrong
        reason = exc.message if isinstance(exc, AgentError) else type(exc).__name__
        logger.error("invalid MCP configuration", extra={"reason": reason})
        raise AgentError(ErrorCode.INTERNAL_ERROR, "The endpoint is misconfigured: invalid MCP configuration") from None


def _run_service(backend: Any, settings: Any) -> Any:
    """Async runs: state in DynamoDB (RUNS_TABLE), started by an async invoke of the runner function."""
    table = os.environ.get("RUNS_TABLE")
    if not table:
        return None
    from dynamo_runs import DynamoRunStore
    from lmstudio_agent.endpoint.runs import RunService

    return RunService(
        DynamoRunStore(table), backend, options=settings.options(), launcher=_start_run,
        ttl_seconds=int(os.environ.get("RUN_TTL_SECONDS", "3600")),
        run_deadline_seconds=float(os.environ.get("RUN_DEADLINE_SECONDS", "840")),
        # A Lambda response cannot stay open: the events route answers what there is, then EventSource reconnects.
        follow_events=False,
    )


_lambda_client: Any = None


async def _start_run(run_id: str) -> None:
    """Invoke the runner function asynchronously (``InvocationType=Event``): Lambda queues the event and
    answers 202 at once, and the run goes on past this request, bound by the runner's own timeout."""
    global _lambda_client
    if _lambda_client is None:
        import boto3
        from botocore.config import Config

        _lambda_client = boto3.client("lambda", config=Config(connect_timeout=2, read_timeout=5,
                                                              retries={"max_attempts": 3, "mode": "standard"}))
    _lambda_client.invoke(FunctionName=os.environ["RUNNER_FUNCTION"], InvocationType="Event",
                          Payload=json.dumps({"run_id": run_id}).encode())


def _options(settings: Any, context: Any) -> contract.ExecuteOptions:
    """The settings' limits, with the deadline cut to what this invocation has left."""
    if settings is None:
        return contract.ExecuteOptions()
    left = context.get_remaining_time_in_millis() / 1000.0 - DEADLINE_MARGIN_SECONDS if context is not None else None
    return settings.options(limit_seconds=left)


# ---------------------------------------------------------------------------------------- events


def _event_body(event: Mapping[str, Any]) -> bytes | str | None:
    """The raw request body of a proxy event or a direct invoke (base64 decoded when flagged)."""
    body = event.get("body")
    if body is not None and not isinstance(body, (str, bytes)):  # a direct invoke that passed JSON, not a string
        try:
            return json.dumps(body)
        except (RecursionError, ValueError, TypeError):
            raise AgentError(ErrorCode.INVALID_REQUEST, "Request body is nested too deeply or is not JSON") from None
    if body is None or not event.get("isBase64Encoded"):
        return body
    try:
        return base64.b64decode(body, validate=True)
    except (binascii.Error, ValueError, TypeError):
        raise AgentError(ErrorCode.INVALID_REQUEST, "Request body is flagged base64 but is not valid base64") from None


def _headers(event: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The request's headers as (name, value) pairs: every value of ``multiValueHeaders`` (API Gateway keeps
    only the last one in ``headers``), so the contract sees a credential sent twice and refuses it."""
    multi = event.get("multiValueHeaders")
    if isinstance(multi, dict) and multi:
        return [(str(k), str(v)) for k, values in multi.items() for v in (values or [])]
    single = event.get("headers")
    return [(str(k), str(v)) for k, v in single.items()] if isinstance(single, dict) else []


def _handle(event: Any, context: Any) -> Any:
    """Any event through core's router: an API Gateway REST proxy event as sent, anything else
    as the API reference's direct invoke, ``{"body": "..."}``: ``POST /execute`` already authorised by IAM."""
    if isinstance(event, dict) and "httpMethod" in event:
        method, path, authenticated = str(event["httpMethod"]), str(event["path"]), False
    elif isinstance(event, dict):
        logger.set_correlation_id(getattr(context, "aws_request_id", None))
        method, path, authenticated = "POST", "/execute", True
    else:
        return contract.error_response(ErrorCode.INVALID_REQUEST, 'The event must be an object like {"body": "..."}')
    try:
        body = _event_body(event)
    except AgentError as exc:
        return contract.error_response(exc.code, exc.message)
    runtime = _get_runtime()
    route_path = "/" + path.strip("/")
    # Every request through core's one router: the contract's routes, the streamed execute (a Lambda response
    # cannot stay open, so _result sends the whole stream once written), the OpenAI-compatible routes under
    # /v1/ and the async runs over DynamoDB (the events route answers the events there are now). A direct
    # invoke is the JSON-only POST /execute. MCP servers (if configured) are connected once the request is
    # authenticated and valid: once per container, again after one went away (ExecuteBackend.start).
    from lmstudio_agent.endpoint.router import route

    response = _run(route(method, path, _headers(event), body, backend=runtime.backend, api_key=_client_key,
                          cache=runtime.cache, options=_options(runtime.settings, context), runs=runtime.runs,
                          authenticated=authenticated, json_only=authenticated))
    if route_path == "/execute" and method.upper() != "OPTIONS":  # a CORS preflight is no execute outcome
        _count(response)
    return response


def _count(response: Any) -> None:
    """One log line and the metrics for an execute outcome (never the body, the headers or a key). A stream's
    outcome is known only once it is written: it counts as an execute answered."""
    if not isinstance(response, contract.HttpResponse):
        logger.info("execute answered as a stream", extra={"status": response.status})
        return
    code = response.body.get("code")
    if response.status == 200:
        metrics.add_metric(name="ExecuteSuccess", unit=MetricUnit.Count, value=1)
        if response.body.get("cached"):
            metrics.add_metric(name="CacheHit", unit=MetricUnit.Count, value=1)
    else:
        metrics.add_metric(name="ExecuteError", unit=MetricUnit.Count, value=1)
        metrics.add_metadata(key="error_code", value=str(code))
    logger.info("execute answered", extra={"status": response.status, "code": code,
                                           "cached": response.body.get("cached")})


def _result(response: Any) -> dict[str, Any]:
    """The proxy result (the shape API Gateway and a direct invoke's caller both read). A stream (a run's
    events) is collected: API Gateway cannot pass a Python function's response on as it is written."""
    headers = response.all_headers()
    if not isinstance(response, contract.HttpResponse):
        return {"statusCode": response.status, "headers": headers, "body": _run(_collect(response.body))}
    if response.status in contract.NULL_BODY_STATUSES:
        headers.pop("Content-Type", None)
        return {"statusCode": response.status, "headers": headers, "body": ""}
    return {"statusCode": response.status, "headers": headers, "body": response.json()}


async def _collect(body: Any) -> str:
    return "".join([chunk.decode("utf-8") async for chunk in body])


# --------------------------------------------------------------------------------------- entry point


@metrics.log_metrics
@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
def lambda_handler(event: Any, context: Any) -> dict[str, Any]:
    """API Gateway REST proxy events and direct invokes, each through the contract's one request handler."""
    try:
        return _result(_handle(event, context))
    except Exception:  # a malformed event must still get the contract's shape, never Lambda's error page
        logger.exception("unhandled error")
        return _result(contract.error_response(ErrorCode.INTERNAL_ERROR, "Internal error"))


RUN_MARGIN_SECONDS = 10.0


@logger.inject_lambda_context
def run_handler(event: Any, context: Any) -> dict[str, Any]:
    """The runner function: ``{"run_id": ...}`` from the API function's async invoke. The run gets what this
    invocation has left (less a margin to write its end); a run already taken or cancelled is left alone."""
    run_id = event.get("run_id") if isinstance(event, dict) else None
    if not isinstance(run_id, str):
        logger.error("runner invoked without a run_id")
        return {"run_id": None, "status": "invalid"}
    logger.set_correlation_id(run_id)
    runtime = _get_runtime()
    if runtime.runs is None:
        logger.error("runner invoked but RUNS_TABLE is not configured")
        return {"run_id": run_id, "status": "invalid"}
    left = context.get_remaining_time_in_millis() / 1000.0 - RUN_MARGIN_SECONDS if context is not None else None
    state = _run(runtime.runs.execute(run_id, deadline_seconds=max(1.0, left) if left is not None else None))
    status = state.status if state is not None else "expired"
    logger.info("run finished", extra={"run_id": run_id, "status": status})
    return {"run_id": run_id, "status": status}
