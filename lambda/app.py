"""AWS Lambda entry point: a thin adapter from API Gateway (or a direct invoke) to the shared contract.

Every rule (body limits, validation, auth, the tool allow-list, the cache rules, the deadline, the error shape)
lives in ``lmstudio_agent.contract``; this module only translates events, reads secrets and wires the
DynamoDB cache store. Heavy imports (boto3, the agent loop) wait for the first request that needs them.
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
from typing import Any, Mapping

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, CORSConfig, Response
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.logging.utils import copy_config_to_registered_loggers
from aws_lambda_powertools.metrics import MetricUnit

from lmstudio_agent import contract
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

app = APIGatewayRestResolver(
    cors=CORSConfig(
        allow_origin=contract.CORS_HEADERS["Access-Control-Allow-Origin"],
        allow_headers=[h.strip() for h in contract.CORS_HEADERS["Access-Control-Allow-Headers"].split(",")],
        max_age=600,
    ),
    debug=False,  # never the traceback page, whatever POWERTOOLS_DEV says
)


# ------------------------------------------------------------------------------------------ the runtime


@dataclasses.dataclass
class _Runtime:
    """What one container builds once: the settings, the backend and the cache store."""

    settings: Any
    backend: Any
    cache: Any
    token_digest: str


_runtime: _Runtime | None = None
_secrets: Any = None
_loop: asyncio.AbstractEventLoop | None = None
_current_context: Any = None


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


def _get_runtime() -> _Runtime:
    """The container's runtime; rebuilt only when the LM Studio token changed (a rotated secret)."""
    global _runtime
    token = _secret("LM_STUDIO_TOKEN_SECRET")
    digest = hashlib.sha256((token or "").encode()).hexdigest()
    if _runtime is not None and _runtime.token_digest == digest:
        return _runtime

    from pydantic import SecretStr

    from dynamo_cache import DynamoCacheStore
    from lmstudio_agent.service import AgentBackend, EndpointSettings

    # The token comes from Secrets Manager only; an LM_STUDIO_TOKEN variable is never trusted here.
    try:
        settings = EndpointSettings.from_env(os.environ, lm_studio_token=SecretStr(token) if token else None)
    except ValueError as exc:  # pydantic's ValidationError: a bad variable in the template's parameters
        logger.error("invalid endpoint settings", extra={"errors": str(exc)})
        raise AgentError(ErrorCode.INTERNAL_ERROR, "The endpoint is misconfigured: invalid settings") from None
    table = os.environ.get("CACHE_TABLE")
    if _runtime is not None and _runtime.backend.mcp_servers is not None:
        _run(_runtime.backend.mcp_servers.stop())  # a rotated token: the new runtime connects its own
    backend = AgentBackend(settings, mcp_servers=_mcp_servers())
    _runtime = _Runtime(settings, backend, DynamoCacheStore(table) if table else None, digest)
    return _runtime


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


def _options(settings: Any) -> contract.ExecuteOptions:
    """The settings' limits, with the deadline cut to what this invocation has left."""
    options = settings.options()
    if _current_context is not None:
        left = _current_context.get_remaining_time_in_millis() / 1000.0 - DEADLINE_MARGIN_SECONDS
        options = dataclasses.replace(options, deadline_seconds=max(1.0, min(options.deadline_seconds, left)))
    return options


# --------------------------------------------------------------------------------------- execute


def _event_body(event: Mapping[str, Any]) -> bytes | str | None:
    """The raw request body of a proxy event or a direct invoke (base64 decoded when flagged)."""
    body = event.get("body")
    if body is not None and not isinstance(body, (str, bytes)):  # a direct invoke that passed JSON, not a string
        return json.dumps(body)
    if body is None or not event.get("isBase64Encoded"):
        return body
    try:
        return base64.b64decode(body, validate=True)
    except (binascii.Error, ValueError, TypeError):
        raise AgentError(ErrorCode.INVALID_REQUEST, "Request body is flagged base64 but is not valid base64") from None


def _execute(event: Mapping[str, Any], headers: Mapping[str, str], *, key_required: bool) -> contract.HttpResponse:
    """``POST /execute``: auth (unless IAM already authorised a direct invoke), then core's handle_execute."""
    if key_required:
        refused = contract.authorize(headers, _secret("CLIENT_API_KEY_SECRET"))
        if refused is not None:
            _count(refused)
            return refused
    body = _event_body(event)
    runtime = _get_runtime()
    _run(runtime.backend.start())  # MCP servers: connected once per container, again after one went away
    response = _run(
        contract.handle_execute(body, headers, runtime.backend, cache=runtime.cache, options=_options(runtime.settings))
    )
    _count(response)
    return response


def _count(response: contract.HttpResponse) -> None:
    """One log line and the metrics for an execute outcome (never the body, the headers or a key)."""
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


# ------------------------------------------------------------------------------------------ routes


def _to_powertools(response: contract.HttpResponse) -> Response:
    # The contract's headers (CORS included, as the API reference shows) on every answer; for a browser's
    # request (an Origin header) Powertools' CORSConfig then sets the same keys, so nothing is sent twice.
    headers = {k: v for k, v in response.all_headers().items() if k.lower() != "content-type"}
    return Response(status_code=response.status, content_type="application/json", body=response.json(),
                    headers=headers)


@app.get("/health")
def health() -> Response:
    return _to_powertools(contract.health_response())


@app.post("/execute")
def execute() -> Response:
    event = app.current_event
    return _to_powertools(_execute(event.raw_event, dict(event.headers or {}), key_required=True))


@app.not_found
def no_route(_exc: Exception) -> Response:
    """Core answers unrouted requests (404, 405 with Allow, HEAD /health). With ``api_key=None`` core fails
    closed before any backend use, so the backend is never needed here."""
    event = app.current_event
    answer = _run(
        contract.handle_request(event.http_method, event.path, dict(event.headers or {}), None,
                                backend=None, api_key=None)  # type: ignore[arg-type]
    )
    return _to_powertools(answer)


@app.exception_handler(AgentError)
def agent_error(exc: AgentError) -> Response:
    _count(contract.error_response(exc.code, exc.message))
    return _to_powertools(contract.error_response(exc.code, exc.message))


@app.exception_handler(Exception)
def unexpected_error(exc: Exception) -> Response:
    logger.exception("unhandled error in a route")
    return _to_powertools(contract.error_response(ErrorCode.INTERNAL_ERROR, "Internal error"))


# --------------------------------------------------------------------------------------- entry point


def _direct_invoke(event: Any) -> dict[str, Any]:
    """The API reference's ``{"body": "..."}`` event: ``POST /execute`` already authorised by IAM."""
    if not isinstance(event, dict):
        response = contract.error_response(ErrorCode.INVALID_REQUEST, 'The event must be an object like {"body": "..."}')
    else:
        headers = event.get("headers") if isinstance(event.get("headers"), dict) else {}
        try:
            response = _execute(event, {str(k): str(v) for k, v in headers.items()}, key_required=False)
        except AgentError as exc:
            response = contract.error_response(exc.code, exc.message)
    return {"statusCode": response.status, "headers": response.all_headers(), "body": response.json()}


@metrics.log_metrics
@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST)
def lambda_handler(event: Any, context: Any) -> dict[str, Any]:
    """API Gateway REST proxy events go through the resolver; anything else is a direct invoke."""
    global _current_context
    _current_context = context
    try:
        if isinstance(event, dict) and "httpMethod" in event:
            return app.resolve(event, context)
        logger.set_correlation_id(getattr(context, "aws_request_id", None))
        return _direct_invoke(event)
    except Exception:  # a malformed event must still get the contract's shape, never Lambda's error page
        logger.exception("unhandled error outside the routes")
        response = contract.error_response(ErrorCode.INTERNAL_ERROR, "Internal error")
        return {"statusCode": response.status, "headers": response.all_headers(), "body": response.json()}
    finally:
        _current_context = None
