"""Request bodies checked and adapted before llama_cpp.server's routes see them.

llama_cpp.server's error wrapper turns a body that fails validation into a 500 whose message carries a
code location, and a body that is not JSON into a bare 500 (echoing the body). This middleware answers
both with a clear 400 in OpenAI's error shape, validating with llama_cpp's own request models (so the rules
stay theirs), refuses a body that is not ``Content-Type: application/json`` (415), parses with the core's
hardened parser (deep nesting, lone surrogates, invalid UTF-8: 400), caps the body size and the grammars a
request may ask for (``guard.check_request_grammars``), and on chat completions applies the LM Studio
translation of ``response_format`` and names the served model when the client left ``model`` out.

It also runs each request under a :class:`~lmstudio_gateway.guard.RequestControl`: generation stops at the
next token when the client disconnects, and at the wall-clock limit the client gets a 504 and generation
stops too.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from typing import Any

from llama_cpp.server.types import (
    CreateChatCompletionRequest,
    CreateCompletionRequest,
    CreateEmbeddingRequest,
    DetokenizeInputRequest,
    TokenizeInputRequest,
)
from lmstudio_agent.errors import AgentError
from lmstudio_agent.jsonsafe import loads as safe_loads
from pydantic import BaseModel, ValidationError
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from lmstudio_gateway.compat import ResponseFormatError, translate_response_format
from lmstudio_gateway.errors import openai_error, send_json
from lmstudio_gateway.guard import (
    DEFAULT_MAX_REQUEST_SECONDS,
    GrammarLimitError,
    RequestControl,
    check_request_grammars,
    current_request,
)

logger = logging.getLogger("lmstudio_gateway.body")
# After the wall-clock limit the model stops at its next token; waiting for that is bounded too.
STOP_GRACE_SECONDS = 30.0

CHAT_PATH = "/v1/chat/completions"
MAX_BODY_BYTES = 8 << 20
MAX_REPORTED_ERRORS = 5

# The routes whose body names a model: one the gateway does not serve is refused, never answered by another.
MODEL_PATHS = frozenset({CHAT_PATH, "/v1/completions", "/v1/engines/copilot-codex/completions", "/v1/embeddings"})

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
    """A body the gateway refuses; ``param`` names the offending field when there is one."""

    def __init__(self, message: str, param: str | None = None, status: int = 400, code: str | None = None) -> None:
        super().__init__(message)
        self.param = param
        self.status = status
        self.code = code


def describe_validation_error(exc: ValidationError) -> str:
    """Pydantic's errors as ``field: problem`` pairs, without echoing the input back."""
    parts = [
        f"{'.'.join(str(p) for p in error['loc']) or 'body'}: {error['msg']}"
        for error in exc.errors(include_url=False, include_input=False)[:MAX_REPORTED_ERRORS]
    ]
    return "Invalid request: " + "; ".join(parts)


def adapt_body(path: str, body: bytes, model_alias: str) -> bytes:
    """The body to hand to the route (rewritten for chat completions), or BadRequest."""
    try:
        payload: Any = safe_loads(body)
    except AgentError as exc:
        raise BadRequest(exc.message.rstrip(".") + ".") from None
    if not isinstance(payload, dict):
        raise BadRequest("Request body must be a JSON object.")
    try:
        check_request_grammars(payload)
    except GrammarLimitError as exc:
        raise BadRequest(str(exc), param=exc.param) from None
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
    model = payload.get("model")
    if path in MODEL_PATHS and model is not None and model != model_alias:
        # OpenAI's answer to an unknown model: 404 model_not_found. llama_cpp.server would serve its one model
        # under any name, so a client asking for another model would silently measure this one.
        shown = model if isinstance(model, str) else json.dumps(model)
        raise BadRequest(f"The model '{shown[:200]}' does not exist on this server: it serves '{model_alias}' "
                         "(GET /v1/models).", param="model", status=404, code="model_not_found")
    try:
        REQUEST_MODELS[path].model_validate(payload)
    except ValidationError as exc:
        raise BadRequest(describe_validation_error(exc)) from None
    return json.dumps(payload).encode()


def is_json_content_type(scope: Scope) -> bool:
    """Whether the request says ``Content-Type: application/json`` (parameters such as charset allowed)."""
    values = [v for k, v in scope.get("headers", []) if k == b"content-type"]
    if len(values) != 1:
        return False
    media_type = values[0].decode("latin-1").split(";", 1)[0].strip().lower()
    return media_type == "application/json"


class RequestBodyMiddleware:
    """Reads, checks and (for chat) adapts the JSON body of llama_cpp.server's POST routes, and runs each
    under a wall-clock limit of ``max_request_seconds`` that also stops generation when the client leaves."""

    def __init__(
        self,
        app: ASGIApp,
        model_alias: str,
        max_body_bytes: int = MAX_BODY_BYTES,
        max_request_seconds: float = DEFAULT_MAX_REQUEST_SECONDS,
    ) -> None:
        self.app = app
        self.model_alias = model_alias
        self.max_body_bytes = max_body_bytes
        self.max_request_seconds = max_request_seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or scope["path"] not in REQUEST_MODELS:
            await self.app(scope, receive, send)
            return
        try:
            if not is_json_content_type(scope):
                raise BadRequest("Content-Type must be application/json.", status=415)
            body = await self._read(receive)
            if body is None:
                return  # the client went away
            body = adapt_body(scope["path"], body, self.model_alias)
        except BadRequest as exc:
            await send_json(send, exc.status,
                            openai_error(str(exc), type_="invalid_request_error", param=exc.param, code=exc.code))
            return
        await self._run_guarded(_with_length(scope, len(body)), body, receive, send)

    async def _run_guarded(self, scope: Scope, body: bytes, receive: Receive, send: Send) -> None:
        """The route, with generation stopped when the client disconnects or the wall-clock limit passes."""
        control = RequestControl()
        disconnected = asyncio.Event()
        started = False
        answered_by_us = False

        async def watch() -> None:  # the real channel is ours from here: it only says when the client leaves
            while (await receive())["type"] != "http.disconnect":
                pass
            disconnected.set()
            control.cancel("the client disconnected")

        sent_body = False

        async def inner_receive() -> Message:
            nonlocal sent_body
            if not sent_body:
                sent_body = True
                return {"type": "http.request", "body": body, "more_body": False}
            await disconnected.wait()
            return {"type": "http.disconnect"}

        async def inner_send(message: Message) -> None:
            nonlocal started
            if answered_by_us or disconnected.is_set():
                return  # the client has its 504, or is gone
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        token = current_request.set(control)
        watcher = asyncio.ensure_future(watch())
        running = asyncio.ensure_future(self.app(scope, inner_receive, inner_send))
        try:
            done, _ = await asyncio.wait({running}, timeout=self.max_request_seconds)
            if not done:
                control.cancel(f"the wall-clock limit of {self.max_request_seconds:g}s passed")
                logger.warning("a %s request passed the limit of %gs; stopping its generation",
                               scope["path"], self.max_request_seconds)
                if not started:
                    answered_by_us = True
                    message = f"The request did not finish within the gateway's limit of {self.max_request_seconds:g}s."
                    await send_json(send, 504, openai_error(message, type_="timeout_error", code="request_timeout"))
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(asyncio.shield(running), STOP_GRACE_SECONDS)
            if running.done() and not running.cancelled() and running.exception() is not None:
                if answered_by_us or disconnected.is_set():
                    return  # nobody is listening any more
                raise running.exception()  # type: ignore[misc]
        finally:
            current_request.reset(token)
            watcher.cancel()
            if not running.done():
                running.cancel()

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
