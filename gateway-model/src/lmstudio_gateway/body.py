"""Request bodies checked and adapted before llama_cpp.server's routes see them.

llama_cpp.server's error wrapper turns a body that fails validation into a 500 whose message carries a
code location, and a body that is not JSON into a bare 500. This middleware answers both with a clear
400 in OpenAI's error shape, validating with llama_cpp's own request models (so the rules stay theirs),
caps the body size, and on chat completions applies the LM Studio translation of ``response_format``
and names the served model when the client left ``model`` out.
"""

from __future__ import annotations

import json
from typing import Any

from llama_cpp.server.types import (
    CreateChatCompletionRequest,
    CreateCompletionRequest,
    CreateEmbeddingRequest,
    DetokenizeInputRequest,
    TokenizeInputRequest,
)
from pydantic import BaseModel, ValidationError
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from lmstudio_agent.errors import validation_problems
from lmstudio_gateway.compat import ResponseFormatError, translate_response_format
from lmstudio_gateway.errors import openai_error, send_json

CHAT_PATH = "/v1/chat/completions"
MAX_BODY_BYTES = 8 << 20
MAX_REPORTED_ERRORS = 5

# The JSON routes of llama_cpp.server and the request model each one validates with.
REQUEST_MODELS: dict[str, type[BaseModel]] = {
    CHAT_PATH: CreateChatCompletionRequest,
    "/v1/completions": CreateCompletionRequest,
    "/v1/engines/copilot-codex/completions": CreateCompletionRequest,
    "/v1/embeddings": CreateEmbeddingRequest,
    "/extras/tokenize": TokenizeInputRequest,
    "/extras/tokenize/count": TokenizeInputRequest,
    "/extras/detokenize": DetokenizeInputRequest,
}


class BadRequest(ValueError):
    """A body the gateway refuses; ``param`` names the offending field when there is one.

    Args:
        message: What is wrong with the body.
        param: The offending field, when there is one.
        status: The HTTP status to answer with.
    """

    def __init__(self, message: str, param: str | None = None, status: int = 400) -> None:
        super().__init__(message)
        self.param = param
        self.status = status


def describe_validation_error(exc: ValidationError) -> str:
    """Pydantic's errors as ``field: problem`` pairs, without echoing the input back."""
    return "Invalid request: " + validation_problems(exc, root="body", limit=MAX_REPORTED_ERRORS)


def adapt_body(path: str, body: bytes, model_alias: str) -> bytes:
    """The body to hand to the route (rewritten for chat completions), or BadRequest."""
    try:
        payload: Any = json.loads(body)
    except ValueError:
        raise BadRequest("Request body is not valid JSON.") from None
    if not isinstance(payload, dict):
        raise BadRequest("Request body must be a JSON object.")
    if path == CHAT_PATH:
        if not payload.get("messages"):
            raise BadRequest("messages must be a non-empty list.", param="messages")
        try:
            payload["response_format"] = translate_response_format(payload.get("response_format"))
        except ResponseFormatError as exc:
            raise BadRequest(str(exc), param="response_format") from None
        if payload["response_format"] is None:
            del payload["response_format"]
        payload.setdefault("model", model_alias)
    try:
        REQUEST_MODELS[path].model_validate(payload)
    except ValidationError as exc:
        raise BadRequest(describe_validation_error(exc)) from None
    return json.dumps(payload).encode()


class RequestBodyMiddleware:
    """Reads, checks and (for chat) adapts the JSON body of llama_cpp.server's POST routes.

    Args:
        app: The ASGI app behind the middleware.
        model_alias: The model name the server answers to.
        max_body_bytes: The largest request body accepted.
    """

    def __init__(self, app: ASGIApp, model_alias: str, max_body_bytes: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.model_alias = model_alias
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or scope["path"] not in REQUEST_MODELS:
            await self.app(scope, receive, send)
            return
        try:
            body = await self._read(receive)
            if body is None:
                return  # the client went away
            body = adapt_body(scope["path"], body, self.model_alias)
        except BadRequest as exc:
            await send_json(send, exc.status, openai_error(str(exc), type_="invalid_request_error", param=exc.param))
            return
        await self.app(_with_length(scope, len(body)), _replay(body, receive), send)

    async def _read(self, receive: Receive) -> bytes | None:
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return None
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                raise BadRequest(f"Request body exceeds {self.max_body_bytes} bytes.", status=413)
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)


def _with_length(scope: Scope, length: int) -> Scope:
    headers = [(k, v) for k, v in scope["headers"] if k != b"content-length"]
    return {**scope, "headers": [*headers, (b"content-length", str(length).encode())]}


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replayed() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()  # later reads are disconnect checks: ask the real channel

    return replayed
