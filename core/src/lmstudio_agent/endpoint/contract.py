"""The shared HTTP contract: models, auth, routing and the framework-free execute function.

The Lambda, the Cloudflare Worker and the bridge hub are thin adapters over this module: they turn their
platform's request into ``handle_request`` (or ``authorize`` + ``handle_execute``) and the returned
:class:`HttpResponse` into their platform's response. Every rule (body limits, validation, the tool
allow-list, the cache, the deadline, the error shape) lives here once.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import time
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal, Optional, Protocol, Union
from collections.abc import Callable, Iterable, Mapping

from pydantic import StrictBool, BaseModel, ConfigDict, Field, ValidationError, field_validator

from .cache import DEFAULT_TTL_SECONDS, CacheStore, cache_key, is_cacheable
from ..deadline import DEFAULT_DEADLINE_SECONDS, Deadline
from ..agent.documents import MAX_DOCUMENT_CHARS, MAX_DOCUMENTS, check_documents
from ..agent.documents import NAME_PATTERN as DOCUMENT_NAME_PATTERN
from ..errors import AgentError, ErrorCode, validation_problems
from ..jsonsafe import loads as _safe_loads
from ..agent.messages import AgentMessage, answered

logger = logging.getLogger("lmstudio_agent.contract")

MAX_BODY_BYTES = 64 * 1024
MAX_INSTRUCTION_CHARS = 16_000
MAX_TOOLS_PER_REQUEST = 32

CORS_HEADERS: dict[str, str] = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Headers": "Authorization, Content-Type, X-Api-Key, Cache-Control",
    "Access-Control-Allow-Methods": "GET, POST, OPTIONS",
}


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


def header_map(headers: Headers) -> dict[str, str]:
    """Headers as a dict with lower-case names. Accepts a mapping or (name, value) pairs; a name that repeats
    gets its values joined with ", ", as HTTP intermediaries and the Fetch API's ``Headers`` combine them.

    Args:
        headers: The request headers: a mapping or (name, value) pairs.
    """
    pairs = headers.items() if isinstance(headers, Mapping) else headers
    combined: dict[str, str] = {}
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
    """A parsed JSON object validated into an :class:`ExecuteRequest` (the strict contract), or AgentError.

    Args:
        data: The request body, already parsed (:func:`read_json_object`).
    """
    instruction = data.get("instruction")
    if instruction is None:
        raise AgentError(ErrorCode.INVALID_INSTRUCTION, "Missing instruction")
    if not isinstance(instruction, str) or not instruction.strip():
        raise AgentError(ErrorCode.INVALID_INSTRUCTION, "Instruction must be a non-empty string")
    documents = data.get("documents")
    if documents is not None:
        check_documents(documents)  # INVALID_REQUEST naming the bad document, before pydantic's generic message
    try:
        return ExecuteRequest.model_validate(data)
    except ValidationError as exc:
        raise AgentError(ErrorCode.INVALID_REQUEST, "Invalid request body: " + validation_problems(exc, root="body")) from None


@dataclass(frozen=True)
class ExecutePlan:
    """What the contract decides about a request before its run, the same for a JSON answer and a stream:
    the tools (allow-list applied), the model, whether the answer may be cached and under which key."""

    selection: ToolSelection
    model: str
    use_cache: bool
    cache_key: str


async def prepare(backend: ExecuteBackend) -> None:
    """Let the backend connect what it needs before a run (MCP servers: once, again after one went away),
    once the request is authenticated and valid. A backend without ``start`` needs nothing.

    Args:
        backend: The backend about to run the request.
    """
    start = getattr(backend, "start", None)
    if start is not None:
        await start()


def plan_execute(request: ExecuteRequest, backend: ExecuteBackend, *, headers: Mapping[str, str] | None = None,
                 cache: CacheStore | None = None) -> ExecutePlan:
    """The tool selection (UNKNOWN_TOOL is raised here), the model, the cache rule and the cache key: the key
    names the deployment's scope, the owner of the tools (an agent identity on the hub), the instruction, the
    tools, the model and the documents.

    Args:
        request: The validated request.
        backend: The backend that will run it (its allow-list, default model and cache scope).
        headers: The request headers; ``Cache-Control: no-cache`` (or ``no-store``) skips the cache.
        cache: The cache store (None: the answer is never cached).
    """
    selection = backend.select_tools(request.tools)
    model = request.model or backend.default_model
    use_cache = cache is not None and is_cacheable(has_side_effects=selection.has_side_effects, headers=headers or {})
    scope = backend.cache_scope() + (f"|owner:{selection.owner}" if selection.owner else "")
    key = cache_key(instruction=request.instruction, tools=list(selection.names), model=model, scope=scope,
                    documents=request.documents)
    return ExecutePlan(selection, model, use_cache, key)


def no_answer_error(transcript: list[AgentMessage]) -> AgentError | None:
    """NO_ANSWER (with the transcript) for a run that ended without an answer, else None. Such a run is never
    cached: the same request may well succeed on another try.

    Args:
        transcript: The run's messages.
    """
    if answered(transcript):
        return None
    last = transcript[-1] if transcript else None
    reason = last.content if last is not None and last.type == "error" and last.content else \
        "The run ended without an answer."
    return AgentError(ErrorCode.NO_ANSWER, reason, details={"transcript": transcript})


async def execute(
    request: ExecuteRequest,
    backend: ExecuteBackend,
    *,
    headers: Mapping[str, str] | None = None,
    cache: CacheStore | None = None,
    options: ExecuteOptions | None = None,
) -> ExecuteResponse:
    """Run a validated request through the tool allow-list, the cache and the backend, under the deadline.

    Raises AgentError for every failure (NO_ANSWER with the transcript for a run that ended without an answer).

    Args:
        request: The validated request.
        backend: What runs the agent.
        headers: The request headers; ``Cache-Control: no-cache`` (or ``no-store``) skips the cache.
        cache: The cache store (None: no cache).
        options: The deployment's limits (default: :class:`ExecuteOptions`'s).
    """
    options = options or ExecuteOptions()
    await prepare(backend)
    plan = plan_execute(request, backend, headers=headers, cache=cache)
    selection, model, use_cache, key = plan.selection, plan.model, plan.use_cache, plan.cache_key
    if use_cache and cache is not None:
        hit = await _cache_get(cache, key)
        if hit is not None:
            return ExecuteResponse(result=hit, cached=True)

    deadline = Deadline(options.deadline_seconds)
    try:
        # The backend honours the deadline call by call; this is the backstop for anything that does not.
        extra = {"documents": request.documents} if request.documents else {}
        transcript = await asyncio.wait_for(
            backend.run(request.instruction, selection, model, deadline, **extra),
            timeout=options.deadline_seconds + 1.0,
        )
    except TimeoutError:
        raise AgentError(
            ErrorCode.UPSTREAM_TIMEOUT, f"The model did not finish within {options.deadline_seconds:g}s"
        ) from None

    failed = no_answer_error(transcript)
    if failed is not None:
        raise failed
    if use_cache and cache is not None:
        await _cache_put(cache, key, transcript, options.cache_ttl_seconds)
    return ExecuteResponse(result=transcript, cached=False)


async def _cache_get(cache: CacheStore, key: str) -> list[AgentMessage] | None:
    try:
        raw = await cache.get(key)
        if raw is None:
            return None
        data = json.loads(raw)
        if isinstance(data, dict):  # a streamed run's entry: {"result": [...], "events": [...]} (streaming.py)
            data = data["result"]
        return [AgentMessage.model_validate(m) for m in data]
    except Exception:  # a broken cache must never fail a request: fall through to a fresh run
        logger.warning("cache read failed; running uncached", exc_info=True)
        return None


async def _cache_put(cache: CacheStore, key: str, transcript: list[AgentMessage], ttl: int) -> None:
    try:
        await cache.put(key, json.dumps([m.to_dict() for m in transcript]), ttl)
    except Exception:
        logger.warning("cache write failed; the answer is still returned", exc_info=True)


async def handle_execute(
    body: Body,
    headers: Headers,
    backend: ExecuteBackend,
    *,
    cache: CacheStore | None = None,
    options: ExecuteOptions | None = None,
) -> HttpResponse:
    """``POST /execute`` after auth: every outcome is an :class:`HttpResponse`, never an exception.

    Args:
        body: The raw request body.
        headers: The request headers: a mapping or (name, value) pairs.
        backend: What runs the agent.
        cache: The cache store (None: no cache).
        options: The deployment's limits (default: :class:`ExecuteOptions`'s).
    """
    options = options or ExecuteOptions()
    headers = header_map(headers)
    try:
        request = parse_execute_request(body, options.max_body_bytes)
        response = await execute(request, backend, headers=headers, cache=cache, options=options)
    except AgentError as exc:
        if exc.http_status >= 500:
            logger.warning("execute failed: %s", exc)
        transcript = exc.details.get("transcript") if exc.code is ErrorCode.NO_ANSWER else None
        return error_response(exc.code, exc.message, result=transcript)
    except Exception:
        logger.exception("unexpected error in execute")
        return error_response(ErrorCode.INTERNAL_ERROR, "Internal error while running the agent")
    body_out = response.model_dump(mode="json", exclude_none=True)
    return HttpResponse(200, body_out, {"Cache-Control": "no-store"})


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
    """Route one request: ``GET /health`` (open), ``POST /execute`` (keyed), CORS preflight, 404/405.

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
    headers = header_map(headers)
    path = "/" + path.strip("/")
    refused = route_refusal(method, path, {"/health": "GET", "/execute": "POST"})
    if refused is not None:
        return refused
    if path == "/health":
        return health_response()
    if not authenticated:
        refused = key_refusal(headers, api_key)
        if refused is not None:
            return refused
    return await handle_execute(body, headers, backend, cache=cache, options=options)


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
