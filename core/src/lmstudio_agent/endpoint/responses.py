"""The HTTP answers every route gives: the bodies' models (:class:`ExecuteResponse`, :class:`ErrorResponse`,
:class:`HealthResponse`), the framework-free :class:`HttpResponse` the adapters turn into their platform's own,
the contract's error shape (:func:`error_response`) and the headers every answer carries (CORS).

:mod:`.contract` re-exports every name here, where the adapters have always imported them from.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any, Literal, Optional
from collections.abc import Mapping

from pydantic import BaseModel, Field

from ..agent.messages import AgentMessage
from ..errors import ErrorCode


CORS_HEADERS: dict[str, str] = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Headers": "Authorization, Content-Type, X-Api-Key, Cache-Control",
    "Access-Control-Allow-Methods": "GET, POST, OPTIONS",
}
# Statuses whose responses carry no body (the Fetch spec's "null body status": the Worker's runtime throws on
# one with a body; the Lambda sends none either).
NULL_BODY_STATUSES = frozenset({101, 204, 205, 304})


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
