"""AWS Lambda entry point: a thin adapter from API Gateway (or a direct invoke) to the shared contract.

Every request, whatever its shape, takes one path: the event becomes one ``contract.handle_request`` call and
its answer a proxy result, as in the Worker. Every rule (routing, body limits, validation, auth, the tool
allow-list, the cache rules, the deadline, the error shape) lives in ``lmstudio_agent.contract``; this module
only translates events, reads secrets and wires the DynamoDB cache store. Heavy imports (boto3, the agent
loop) wait for the first request that needs them.
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
# Statuses whose responses carry no body (a preflight's 204).
NULL_BODY_STATUSES = frozenset({204, 304})


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
    from lmstudio_agent.service import EndpointService, UnconfiguredBackend, load_settings

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
    _runtime = _Runtime(settings, EndpointService(settings).backend(), DynamoCacheStore(table) if table else None,
                        digest)
    return _runtime


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
        return json.dumps(body)
    if body is None or not event.get("isBase64Encoded"):
        return body
    try:
        return base64.b64decode(body, validate=True)
    except (binascii.Error, ValueError, TypeError):
        raise AgentError(ErrorCode.INVALID_REQUEST, "Request body is flagged base64 but is not valid base64") from None


def _headers(event: Mapping[str, Any]) -> dict[str, str]:
    headers = event.get("headers")
    return {str(k): str(v) for k, v in headers.items()} if isinstance(headers, dict) else {}


def _handle(event: Any, context: Any) -> contract.HttpResponse:
    """Any event through ``contract.handle_request``: an API Gateway REST proxy event as sent, anything else
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
    response = _run(contract.handle_request(
        method, path, _headers(event), body, backend=runtime.backend, api_key=_client_key,
        cache=runtime.cache, options=_options(runtime.settings, context), authenticated=authenticated,
    ))
    if "/" + path.strip("/") == "/execute":
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


def _result(response: contract.HttpResponse) -> dict[str, Any]:
    """The proxy result (the shape API Gateway and a direct invoke's caller both read)."""
    headers = response.all_headers()
    if response.status in NULL_BODY_STATUSES:
        headers.pop("Content-Type", None)
        return {"statusCode": response.status, "headers": headers, "body": ""}
    return {"statusCode": response.status, "headers": headers, "body": response.json()}


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
