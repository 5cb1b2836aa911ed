"""The shared HTTP contract: the request and response models, auth, the backend protocol and the request's
one validation.

The Lambda, the Cloudflare Worker and the bridge hub are thin adapters over :func:`lmstudio_agent.endpoint.router.route`
(the one router), which uses this module and :mod:`.pipeline` (the run of a validated request, the same for a
JSON answer and a stream): it turns their platform's request into one call and the returned
:class:`HttpResponse` into their platform's response. Every rule (body limits, validation, the tool
allow-list, the cache, the deadline, the error shape) lives in these modules once.

A body is read once (:func:`read_json_object`) and validated once into an :class:`ExecuteRequest`
(:func:`execute_request_from`, the request's only validation: the agent takes its instruction and documents as
they are). The pipeline's functions (``execute``, ``handle_execute``, ``plan_execute``...) are also reachable
from here, as they always were.
"""

from __future__ import annotations

import hmac
import json
import logging
import time
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal, Optional, Protocol, Union
from collections.abc import Callable, Iterable, Mapping

from pydantic import StrictBool, BaseModel, ConfigDict, Field, ValidationError, field_validator

from .cache import DEFAULT_TTL_SECONDS, CacheStore
from ..deadline import DEFAULT_DEADLINE_SECONDS, Deadline
from ..agent.documents import MAX_DOCUMENT_CHARS, MAX_DOCUMENTS, check_documents
from ..agent.documents import NAME_PATTERN as DOCUMENT_NAME_PATTERN
from ..errors import AgentError, ErrorCode, validation_problems
from ..jsonsafe import loads as _safe_loads
from ..agent.messages import AgentMessage

logger = logging.getLogger("lmstudio_agent.endpoint.contract")

MAX_BODY_BYTES = 64 * 1024
MAX_INSTRUCTION_CHARS = 16_000
MAX_TOOLS_PER_REQUEST = 32

CORS_HEADERS: dict[str, str] = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Headers": "Authorization, Content-Type, X-Api-Key, Cache-Control",
    "Access-Control-Allow-Methods": "GET, POST, OPTIONS",
}
# Statuses whose responses carry no body (the Fetch spec's "null body status": the Worker's runtime throws on
# one with a body; the Lambda sends none either).
NULL_BODY_STATUSES = frozenset({101, 204, 205, 304})


# ---------------------------------------------------------------------------------------------- models


class ExecuteRequest(BaseModel):
    """Body of ``POST /execute``."""

    model_config = ConfigDict(extra="forbid")

    instruction: str = Field(
        min_length=1, max_length=MAX_INSTRUCTION_CHARS, pattern=r"\S", description="What the agent should do (not blank)."
    )
    tools: list[Annotated[str, Field(min_length=1, max_length=64)]] = Field(
        default_factory=list,
        max_length=MAX_TOOLS_PER_REQUEST,
        description="Names of server-registered tools to offer; empty means every tool on the allow-list.",
    )
    model: Optional[str] = Field(default=None, max_length=256, description="Model id; the server default if unset.")
    documents: Optional[
        Annotated[dict[Annotated[str, Field(pattern=DOCUMENT_NAME_PATTERN)],
                       Annotated[str, Field(max_length=MAX_DOCUMENT_CHARS)]], Field(max_length=MAX_DOCUMENTS)]
    ] = Field(
        default=None,
        description=f"Long inputs, name -> text (at most {MAX_DOCUMENTS}, each at most {MAX_DOCUMENT_CHARS} "
                    "characters; names of 1 to 64 letters, digits, '_', '.', '-'). The model passes one to a tool "
                    'by writing "@doc:NAME" as an argument\'s value; the tool receives the full text.',
    )
    stream: Optional[StrictBool] = Field(
        default=None,
        description="true: answer with Server-Sent Events (the AI SDK UI message stream), as "
                    "'Accept: text/event-stream' does. See docs/readme/streaming.md.",
    )

    @field_validator("tools")
    @classmethod
    def _tool_names(cls, names: list[str]) -> list[str]:
        for name in names:
            if not name or len(name) > 64:
                raise ValueError("each tool name must be 1 to 64 characters")
        return names

    @field_validator("documents", mode="before")
    @classmethod
    def _documents(cls, documents: Any) -> Any:
        # The documents' one rule (documents.check_documents), whose message names the bad document.
        if documents is None:
            return None
        try:
            return check_documents(documents)
        except AgentError as exc:
            raise _DocumentProblem(exc.message) from None


class _DocumentProblem(ValueError):
    """A document the request carries breaks :func:`~lmstudio_agent.agent.documents.check_documents`' rule."""


class ExecuteResponse(BaseModel):
    """Success body of ``POST /execute``."""

    success: Literal[True] = True
    result: list[AgentMessage]
    cached: bool = False


class ErrorResponse(BaseModel):
    """Error body of every route."""

    success: Literal[False] = False
    error: str = Field(description="A human-readable message; never a stack trace.")
    code: ErrorCode
    result: Optional[list[AgentMessage]] = Field(
        default=None, description="The transcript, for a run that ended without an answer (NO_ANSWER).")


class HealthResponse(BaseModel):
    """Body of ``GET /health``."""

    status: Literal["healthy"] = "healthy"
    timestamp: int = Field(description="Milliseconds since the Unix epoch.")


# ------------------------------------------------------------------------------------------- responses


@dataclass
class HttpResponse:
    """A framework-free HTTP response: the adapters turn it into their platform's own."""

    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)

    def json(self) -> str:
        """The body as JSON text; always encodable as UTF-8 (a lone surrogate that slipped in is escaped)."""
        text = json.dumps(self.body, ensure_ascii=False, separators=(",", ":"))
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            return json.dumps(self.body, separators=(",", ":"))
        return text

    def all_headers(self) -> dict[str, str]:
        """The headers to send: JSON content type and CORS first, then this response's own (which win)."""
        return {"Content-Type": "application/json", **CORS_HEADERS, **self.headers}


def error_response(code: ErrorCode, message: str, headers: Mapping[str, str] | None = None,
                   result: list[AgentMessage] | None = None) -> HttpResponse:
    """An error in the contract's shape (:class:`ErrorResponse`), with the HTTP status that ``code`` maps to.

    Args:
        code: The error code; it sets the status and is the body's ``code``.
        message: The human-readable message (never a stack trace).
        headers: Extra response headers (``WWW-Authenticate``, ``Allow``).
        result: The transcript, for a run that ended without an answer (NO_ANSWER).
    """
    body = ErrorResponse(error=message, code=code, result=result).model_dump(mode="json", exclude_none=True)
    return HttpResponse(status=code.http_status, body=body, headers=dict(headers or {}))


def health_response() -> HttpResponse:
    """The ``GET /health`` answer: 200 with the current time in milliseconds."""
    return HttpResponse(200, HealthResponse(timestamp=int(time.time() * 1000)).model_dump(mode="json"))


# ----------------------------------------------------------------------------------------------- auth


Headers = Union[Mapping[str, str], Iterable[tuple[str, str]]]
CREDENTIAL_HEADERS = ("authorization", "x-api-key")


class HeaderMap(dict[str, str]):
    """A request's headers once :func:`header_map` has combined them: lower-case names, repeats joined."""


def header_map(headers: Headers) -> HeaderMap:
    """Headers as a dict with lower-case names. Accepts a mapping or (name, value) pairs; a name that repeats
    gets its values joined with ", ", as HTTP intermediaries and the Fetch API's ``Headers`` combine them.
    Runs once per request: a :class:`HeaderMap` (its own result) is returned as it is.

    Args:
        headers: The request headers: a mapping or (name, value) pairs.
    """
    if isinstance(headers, HeaderMap):
        return headers
    pairs = headers.items() if isinstance(headers, Mapping) else headers
    combined = HeaderMap()
    for name, value in pairs:
        key = str(name).lower()
        combined[key] = f"{combined[key]}, {value}" if key in combined else str(value)
    return combined


def credential_headers(headers: Headers) -> dict[str, str]:
    """:func:`header_map`, after the one rule for a credential sent twice that every server here applies.

    A credential header (``Authorization``, ``X-Api-Key``) that repeats, as two headers or as one whose value
    is a comma-joined list (how proxies and the Fetch API pass repeats on), is ambiguous: AgentError
    (UNAUTHORIZED). Keys never hold a comma (a bearer token's alphabet has none), so a comma means two values.

    Args:
        headers: The request headers: a mapping or (name, value) pairs.
    """
    lowered = header_map(headers)
    for name in CREDENTIAL_HEADERS:
        if "," in lowered.get(name, ""):
            raise AgentError(
                ErrorCode.UNAUTHORIZED, f"Ambiguous credentials: send the {name.title()} header once, with one key"
            )
    return lowered


def presented_key(headers: Headers) -> str | None:
    """The client key from ``Authorization: Bearer <key>`` or ``X-Api-Key``, if any; AgentError(UNAUTHORIZED)
    for a credential sent twice (:func:`credential_headers`) or two different keys in the two headers.

    Args:
        headers: The request headers: a mapping or (name, value) pairs.
    """
    lowered = credential_headers(headers)
    auth = lowered.get("authorization", "").strip()
    bearer = auth[7:].strip() if auth[:7].lower() == "bearer " else ""
    key = lowered.get("x-api-key", "").strip()
    if bearer and key and not hmac.compare_digest(bearer.encode(), key.encode()):
        raise AgentError(ErrorCode.UNAUTHORIZED,
                         "Ambiguous credentials: Authorization and X-Api-Key carry different keys; send one")
    return bearer or key or None


def authorize(headers: Headers, expected_key: str | None) -> HttpResponse | None:
    """None when the request carries the expected key; otherwise the 401/403 response to send.

    Compared in constant time. With no key configured the endpoint refuses everything (fails closed).

    Args:
        headers: The request headers: a mapping or (name, value) pairs.
        expected_key: The deployment's client key (None or empty: none is configured, so 403 for every key).
    """
    try:
        key = presented_key(headers)
    except AgentError as exc:
        return error_response(exc.code, exc.message, {"WWW-Authenticate": "Bearer"})
    if key is None:
        return error_response(
            ErrorCode.UNAUTHORIZED,
            "Missing API key: send 'Authorization: Bearer <key>' or 'X-Api-Key: <key>'",
            {"WWW-Authenticate": "Bearer"},
        )
    if not expected_key:
        logger.error("no client API key is configured: refusing every authenticated route")
        return error_response(ErrorCode.FORBIDDEN, "Invalid API key")
    if not hmac.compare_digest(key.encode(), expected_key.encode()):
        return error_response(ErrorCode.FORBIDDEN, "Invalid API key")
    return None


# -------------------------------------------------------------------------------------------- backends


@dataclass(frozen=True)
class ToolSelection:
    """The server-registered tools a request selected.

    ``owner`` names who may serve this selection when that is not the whole deployment (the bridge hub: the
    agent identities allowed to offer these tools); it is part of the cache key, so one owner's answers are
    never served for another's.
    """

    names: tuple[str, ...]
    has_side_effects: bool
    owner: str = ""
    # What the backend selected, kept for its run so the selection is made once (the local agent: the tool
    # registry narrowed to ``names``); None where the backend keeps nothing.
    tools: Any = field(default=None, compare=False, repr=False)


class ExecuteBackend(Protocol):
    """What runs an execute request: the local agent loop (``service.AgentBackend``) or the bridge hub.

    A backend may also have an ``async start()``: it is awaited before each execute, once the request is
    authenticated and valid, to connect what the backend needs (``AgentBackend``: its MCP servers).
    """

    @property
    def default_model(self) -> str:
        """The model a request that names none runs on."""
        ...

    def cache_scope(self) -> str:
        """Identity of the configuration that answers depend on (part of every cache key)."""
        ...

    def select_tools(self, names: list[str]) -> ToolSelection:
        """The selection for ``names`` (empty: the whole allow-list); AgentError(UNKNOWN_TOOL) otherwise.

        Args:
            names: The tool names the request asked for.
        """
        ...

    async def run(
        self, instruction: str, tools: ToolSelection, model: str, deadline: Deadline,
        documents: dict[str, str] | None = None,
    ) -> list[AgentMessage]:
        """Run the instruction (with the request's ``documents``, passed only when it has some) and return the
        transcript; raise AgentError on failure.

        Args:
            instruction: What the agent should do.
            tools: The tools the run may use (:meth:`select_tools`).
            model: The model to run on.
            deadline: The run's deadline.
            documents: The request's long inputs, name -> text.
        """
        ...


@dataclass
class ExecuteOptions:
    """Per-deployment limits of the execute route."""

    deadline_seconds: float = DEFAULT_DEADLINE_SECONDS
    cache_ttl_seconds: int = DEFAULT_TTL_SECONDS
    max_body_bytes: int = MAX_BODY_BYTES


# ------------------------------------------------------------------------------------------- handlers

Body = Union[bytes, str, None]


def parse_execute_request(body: Body, max_body_bytes: int = MAX_BODY_BYTES) -> ExecuteRequest:
    """Validate a raw body into an :class:`ExecuteRequest`, or raise AgentError with a clear message.

    Args:
        body: The raw request body.
        max_body_bytes: The largest body accepted (PAYLOAD_TOO_LARGE past it).
    """
    return execute_request_from(read_json_object(body, max_body_bytes))


def read_json_object(body: Body, max_body_bytes: int = MAX_BODY_BYTES) -> dict[str, Any]:
    """A raw body as a JSON object, with the contract's limits: PAYLOAD_TOO_LARGE past ``max_body_bytes``,
    INVALID_REQUEST for an empty body, invalid UTF-8, deep nesting, lone surrogates or a non-object.

    Args:
        body: The raw request body.
        max_body_bytes: The largest body accepted.
    """
    if isinstance(body, str):
        try:
            raw = body.encode()
        except UnicodeEncodeError:  # a str body from an event whose JSON carried a lone surrogate escape
            raise AgentError(ErrorCode.INVALID_REQUEST, "Request body is not valid Unicode (it holds a lone surrogate)") from None
    else:
        raw = body or b""
    if len(raw) > max_body_bytes:
        raise AgentError(ErrorCode.PAYLOAD_TOO_LARGE, f"Request body exceeds {max_body_bytes} bytes")
    if not raw.strip():
        raise AgentError(ErrorCode.INVALID_REQUEST, "Request body is empty: expected a JSON object")
    # Invalid UTF-8, deep nesting and lone surrogates (in any string, keys included) are 400s here.
    data = _safe_loads(raw)
    if not isinstance(data, dict):
        raise AgentError(ErrorCode.INVALID_REQUEST, "Request body must be a JSON object")
    return data


def execute_request_from(data: dict[str, Any]) -> ExecuteRequest:
    """A parsed JSON object validated into an :class:`ExecuteRequest` (the strict contract), or AgentError:
    the request's one validation. A bad instruction is INVALID_INSTRUCTION, a bad document INVALID_REQUEST
    naming it, anything else INVALID_REQUEST listing the problems.

    Args:
        data: The request body, already parsed (:func:`read_json_object`).
    """
    try:
        return ExecuteRequest.model_validate(data)
    except ValidationError as exc:
        raise request_error(exc, data) from None


# The instruction's problems that the contract answers INVALID_INSTRUCTION (too long is INVALID_REQUEST).
_INSTRUCTION_PROBLEMS = frozenset({"missing", "string_type", "string_too_short", "string_pattern_mismatch"})


def request_error(exc: ValidationError, data: Mapping[str, Any]) -> AgentError:
    """The contract's error for a body :class:`ExecuteRequest` refused, most specific first: the instruction
    (INVALID_INSTRUCTION), then a document (its own message), then every problem (INVALID_REQUEST).

    Args:
        exc: The error ``ExecuteRequest.model_validate`` raised.
        data: The body it validated.
    """
    problems = exc.errors(include_url=False, include_input=False)
    if any(p["loc"][:1] == ("instruction",) and p["type"] in _INSTRUCTION_PROBLEMS for p in problems):
        if data.get("instruction") is None:
            return AgentError(ErrorCode.INVALID_INSTRUCTION, "Missing instruction")
        return AgentError(ErrorCode.INVALID_INSTRUCTION, "Instruction must be a non-empty string")
    for problem in problems:
        error = (problem.get("ctx") or {}).get("error")
        if problem["loc"][:1] == ("documents",) and isinstance(error, _DocumentProblem):
            return AgentError(ErrorCode.INVALID_REQUEST, str(error))
    return AgentError(ErrorCode.INVALID_REQUEST, "Invalid request body: " + validation_problems(exc, root="body"))


# Builds an error response from a code, a message and extra headers (the contract's shape, or OpenAI's).
Refuse = Callable[[ErrorCode, str, Mapping[str, str]], HttpResponse]

# The client key a deployment expects: the key itself, or a function that looks it up (a secret store), called
# only for a keyed route so that /health never reads a secret. AgentError from it is answered with its code.
KeySource = Union[str, None, Callable[[], Optional[str]]]


async def handle_request(
    method: str,
    path: str,
    headers: Headers,
    body: Body,
    *,
    backend: ExecuteBackend,
    api_key: KeySource,
    cache: CacheStore | None = None,
    options: ExecuteOptions | None = None,
    authenticated: bool = False,
) -> HttpResponse:
    """The contract's JSON routes only: ``GET /health`` (open), ``POST /execute`` (keyed, answered as JSON
    whatever the body or ``Accept`` ask), CORS preflight, 404/405. It is the one router
    (:func:`lmstudio_agent.endpoint.router.route`) without the stream, the OpenAI routes and the runs.

    ``authenticated``: the platform already authenticated the caller (a Lambda invoked directly, which IAM
    authorised), so no client key is asked for. Methods are case-sensitive (RFC 9110): ``post`` is not
    ``POST`` and gets a 405.

    Args:
        method: The HTTP method (case-sensitive).
        path: The request path (leading and trailing ``/`` do not matter).
        headers: The request headers: a mapping or (name, value) pairs.
        body: The raw request body.
        backend: What runs the agent.
        api_key: The client key the deployment expects, or a function that looks it up (called only for a
            keyed route).
        cache: The cache store (None: no cache).
        options: The deployment's limits (default: :class:`ExecuteOptions`'s).
        authenticated: The platform already authenticated the caller: skip the client key check.
    """
    from .router import route  # the router is above the contract; this is its JSON-only view

    answer = await route(method, path, headers, body, backend=backend, api_key=api_key, cache=cache, options=options,
                         authenticated=authenticated, json_only=True)
    assert isinstance(answer, HttpResponse)
    return answer


def route_refusal(method: str, path: str, routes: Mapping[str, str], refuse: Refuse = error_response) -> HttpResponse | None:
    """The answer for a request that goes no further than routing: 404 for an unknown path, 204 for a CORS
    preflight, 405 (with ``Allow``) for a method the route does not take (``HEAD`` goes with ``GET``); None: go on.

    Args:
        method: The HTTP method (case-sensitive).
        path: The normalised path (``/`` first, no trailing ``/``).
        routes: Each route's one method.
        refuse: Builds an error response from a code, a message and headers (the contract's shape by default).
    """
    if path not in routes:
        return refuse(ErrorCode.NOT_FOUND, f"No route for {path}", {})
    if method == "OPTIONS":
        return HttpResponse(204, {}, {})
    if method != routes[path] and not (method == "HEAD" and routes[path] == "GET"):
        return refuse(ErrorCode.METHOD_NOT_ALLOWED, f"{method} is not allowed on {path}", {"Allow": routes[path]})
    return None


def key_refusal(headers: Headers, api_key: KeySource) -> HttpResponse | None:
    """The key check of a keyed route, with the expected key looked up (a secret store) only now: None when
    the request carries it, else the 401/403 (or the lookup's own error) to send.

    Args:
        headers: The request headers.
        api_key: The key the deployment expects, or a function that looks it up.
    """
    try:
        expected = api_key() if callable(api_key) else api_key
    except AgentError as exc:
        return error_response(exc.code, exc.message)
    return authorize(headers, expected)


# The pipeline's names, importable from here as before it had a module of its own (it imports this module, so
# they are looked up on first use).
_PIPELINE_NAMES = frozenset({"ExecutePlan", "Execution", "backend_events", "execute", "execute_error",
                             "execute_response", "handle_execute", "no_answer_error", "plan_execute", "prepare",
                             "start_execution"})


def __getattr__(name: str) -> Any:
    """The pipeline's names, from :mod:`.pipeline` (looked up on first use: it imports this module)."""
    if name in _PIPELINE_NAMES:
        from . import pipeline

        return getattr(pipeline, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
