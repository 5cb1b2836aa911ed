"""The shared HTTP contract: the request model, the backend protocol and the request's one validation; with the
answers (:mod:`.responses`) and the key check (:mod:`.auth`), whose names are all importable from here.

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

from dataclasses import dataclass, field
from typing import Annotated, Any, Optional, Protocol, Union
from collections.abc import Callable, Mapping

from pydantic import StrictBool, BaseModel, ConfigDict, Field, ValidationError, field_validator

from .cache import DEFAULT_TTL_SECONDS, CacheStore
from ..deadline import DEFAULT_DEADLINE_SECONDS, Deadline
from ..agent.documents import MAX_DOCUMENT_CHARS, MAX_DOCUMENTS, check_documents
from ..agent.documents import NAME_PATTERN as DOCUMENT_NAME_PATTERN
from ..errors import AgentError, ErrorCode, validation_problems
from ..jsonsafe import loads as _safe_loads
from ..agent.messages import AgentMessage
from .auth import CREDENTIAL_HEADERS as CREDENTIAL_HEADERS
from .auth import HeaderMap as HeaderMap
from .auth import Headers as Headers
from .auth import KeySource as KeySource
from .auth import authorize as authorize
from .auth import credential_headers as credential_headers
from .auth import header_map as header_map
from .auth import key_refusal as key_refusal
from .auth import presented_key as presented_key
from .responses import CORS_HEADERS as CORS_HEADERS
from .responses import NULL_BODY_STATUSES as NULL_BODY_STATUSES
from .responses import ErrorResponse as ErrorResponse
from .responses import ExecuteResponse as ExecuteResponse
from .responses import HealthResponse as HealthResponse
from .responses import HttpResponse as HttpResponse
from .responses import error_response as error_response
from .responses import health_response as health_response

MAX_BODY_BYTES = 64 * 1024
MAX_INSTRUCTION_CHARS = 16_000
MAX_TOOLS_PER_REQUEST = 32


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
