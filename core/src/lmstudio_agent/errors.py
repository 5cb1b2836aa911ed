"""The one error-code enum of the project, the HTTP status of each code, and the exceptions that carry them."""

from __future__ import annotations

from enum import Enum
from typing import Any


class ErrorCode(str, Enum):
    """Error codes: the six of the API reference, then the few an HTTP service and the bridge need."""

    # The API reference's codes.
    MODEL_NOT_LOADED = "MODEL_NOT_LOADED"
    CONNECTION_FAILED = "CONNECTION_FAILED"
    INVALID_INSTRUCTION = "INVALID_INSTRUCTION"
    TOOL_EXECUTION_FAILED = "TOOL_EXECUTION_FAILED"
    FINE_TUNING_FAILED = "FINE_TUNING_FAILED"
    GGUF_CONVERSION_FAILED = "GGUF_CONVERSION_FAILED"
    # What an HTTP service and the bridge add.
    INVALID_REQUEST = "INVALID_REQUEST"
    UNKNOWN_TOOL = "UNKNOWN_TOOL"
    UNAUTHORIZED = "UNAUTHORIZED"
    FORBIDDEN = "FORBIDDEN"
    NOT_FOUND = "NOT_FOUND"
    METHOD_NOT_ALLOWED = "METHOD_NOT_ALLOWED"
    PAYLOAD_TOO_LARGE = "PAYLOAD_TOO_LARGE"
    UPSTREAM_TIMEOUT = "UPSTREAM_TIMEOUT"
    UPSTREAM_ERROR = "UPSTREAM_ERROR"
    MODEL_OUTPUT_INVALID = "MODEL_OUTPUT_INVALID"
    # The run finished without an answer for the user: rounds ran out, or every tool call failed.
    NO_ANSWER = "NO_ANSWER"
    NO_AGENT_AVAILABLE = "NO_AGENT_AVAILABLE"
    HUB_BUSY = "HUB_BUSY"
    INTERNAL_ERROR = "INTERNAL_ERROR"

    @property
    def http_status(self) -> int:
        """The HTTP status an error with this code is answered with."""
        return HTTP_STATUS[self]


# The API reference answers 400 for a bad request and 500 for an LM Studio error; 401/403 and 504 are
# the additions the issues name. Each code has exactly one status.
HTTP_STATUS: dict[ErrorCode, int] = {
    ErrorCode.MODEL_NOT_LOADED: 500,
    ErrorCode.CONNECTION_FAILED: 500,
    ErrorCode.INVALID_INSTRUCTION: 400,
    ErrorCode.TOOL_EXECUTION_FAILED: 500,
    ErrorCode.FINE_TUNING_FAILED: 500,
    ErrorCode.GGUF_CONVERSION_FAILED: 500,
    ErrorCode.INVALID_REQUEST: 400,
    ErrorCode.UNKNOWN_TOOL: 400,
    ErrorCode.UNAUTHORIZED: 401,
    ErrorCode.FORBIDDEN: 403,
    ErrorCode.NOT_FOUND: 404,
    ErrorCode.METHOD_NOT_ALLOWED: 405,
    ErrorCode.PAYLOAD_TOO_LARGE: 413,
    ErrorCode.UPSTREAM_TIMEOUT: 504,
    ErrorCode.UPSTREAM_ERROR: 500,
    ErrorCode.MODEL_OUTPUT_INVALID: 500,
    # Not the client's mistake and not a crash: the request was understood but the agent could not complete it.
    ErrorCode.NO_ANSWER: 422,
    ErrorCode.NO_AGENT_AVAILABLE: 503,
    ErrorCode.HUB_BUSY: 503,
    ErrorCode.INTERNAL_ERROR: 500,
}


class AgentError(RuntimeError):
    """An error that carries an :class:`ErrorCode`. It is a ``RuntimeError``, as the API reference requires.

    Args:
        code: The :class:`ErrorCode` (it decides the HTTP status).
        message: A human-readable message: never a stack trace or a secret.
        details: Extra machine-readable facts (e.g. ``retry_after``).
    """

    def __init__(self, code: ErrorCode, message: str, *, details: dict[str, Any] | None = None) -> None:
        """Build the error; ``code`` is coerced to :class:`ErrorCode`, so its string value works too."""
        super().__init__(message)
        self.code = ErrorCode(code)
        self.message = message
        self.details = details or {}

    @property
    def http_status(self) -> int:
        """The HTTP status of the error's code."""
        return self.code.http_status

    def __str__(self) -> str:
        return f"{self.code.value}: {self.message}"


def validation_problems(exc: Any, *, root: str = "", limit: int | None = 5, drop: int = 0) -> str:
    """A pydantic ``ValidationError`` as ``field: problem`` pairs joined by ``"; "``: the one conversion every
    layer uses to put one in a message. The input is never echoed (it may be large, or a secret).

    Args:
        exc: The ``ValidationError``.
        root: What to call an error at the top level (empty: the problem alone).
        limit: At most this many errors are shown (None: all).
        drop: Leading location parts to skip (a discriminated union's tag).
    """
    parts = []
    for error in exc.errors(include_url=False, include_input=False)[:limit]:
        location = ".".join(str(part) for part in error["loc"][drop:]) or root
        message = str(error["msg"]).removeprefix("Value error, ")
        parts.append(f"{location}: {message}" if location else message)
    return "; ".join(parts)


class BridgeConnectionError(AgentError, ConnectionError):
    """The AI Bridge could not be reached (CONNECTION_FAILED); also a ``ConnectionError``.

    Args:
        message: What failed, for a person.
    """

    def __init__(self, message: str) -> None:
        """An :class:`AgentError` coded CONNECTION_FAILED."""
        super().__init__(ErrorCode.CONNECTION_FAILED, message)
