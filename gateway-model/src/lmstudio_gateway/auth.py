"""The key check in front of every route but ``GET /health``.

llama_cpp.server's own ``api_key`` check guards only its routers (``/v1/*``, ``/extras/*``); FastAPI's
``/docs``, ``/redoc`` and ``/openapi.json`` and our added routes stay open, and it compares keys with
``==``. This ASGI middleware closes all of them, in constant time, before any route runs.
"""

from __future__ import annotations

import hmac

from lmstudio_agent.endpoint.contract import credential_headers
from lmstudio_agent.errors import AgentError
from starlette.types import ASGIApp, Receive, Scope, Send

from lmstudio_gateway.errors import openai_error, send_json

OPEN_PATHS = frozenset({"/health"})


def bearer_token(scope: Scope) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header, if the request has one.

    Raises AgentError(UNAUTHORIZED) for an Authorization header sent twice: the core contract's one rule.
    """
    pairs = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in scope.get("headers", [])]
    value = credential_headers(pairs).get("authorization", "")
    scheme, _, token = value.strip().partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return None


def _is_cors_preflight(scope: Scope) -> bool:
    # A browser's preflight never carries credentials; the CORS middleware inside answers it itself.
    if scope["method"] != "OPTIONS":
        return False
    names = {name for name, _ in scope.get("headers", [])}
    return b"origin" in names and b"access-control-request-method" in names


class BearerKeyMiddleware:
    """401 with an OpenAI-shaped error unless the request carries ``Authorization: Bearer <api_key>``.

    Args:
        app: The ASGI app behind the check.
        api_key: The key every request but ``/health`` must present.
    """

    def __init__(self, app: ASGIApp, api_key: str) -> None:
        if not api_key:
            raise ValueError("an API key is required")
        self.app = app
        self._key = api_key.encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in OPEN_PATHS or _is_cors_preflight(scope):
            await self.app(scope, receive, send)
            return
        try:
            token = bearer_token(scope)
        except AgentError as exc:
            body = openai_error(exc.message + ".", type_="invalid_request_error", code="invalid_api_key")
            await send_json(send, 401, body, {"WWW-Authenticate": "Bearer"})
            return
        if token is None:
            body = openai_error(
                "Missing API key: send 'Authorization: Bearer <key>'.", type_="invalid_request_error", code="invalid_api_key"
            )
        elif not hmac.compare_digest(token.encode(), self._key):
            body = openai_error("Invalid API key.", type_="invalid_request_error", code="invalid_api_key")
        else:
            await self.app(scope, receive, send)
            return
        await send_json(send, 401, body, {"WWW-Authenticate": "Bearer"})
