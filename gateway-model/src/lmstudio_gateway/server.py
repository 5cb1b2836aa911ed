"""Build the gateway's ASGI app from llama_cpp.server's own factory, and serve it with uvicorn."""

from __future__ import annotations

import os
import secrets
import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from collections.abc import Callable

import uvicorn
from fastapi import FastAPI
from fastapi.routing import APIRoute
from llama_cpp.server import app as llama_server_app
from llama_cpp.server.app import create_app
from llama_cpp.server.settings import ModelSettings, ServerSettings
from lmstudio_agent.endpoint.uvicorn_limits import install_access_log_redaction, uvicorn_limits

from lmstudio_gateway.auth import BearerKeyMiddleware
from lmstudio_gateway.body import REQUEST_MODELS, RequestBodyMiddleware
from lmstudio_gateway.compat import DETOKENIZE_PATH, ServedModel, detokenize_router, lmstudio_router
from lmstudio_gateway.guard import DEFAULT_MAX_REQUEST_SECONDS, guard_llama
from lmstudio_gateway.models import DEFAULT_MODEL_ALIAS, check_model_path, default_adapter_path, default_model_path

API_KEY_ENV = "GATEWAY_API_KEY"
DEFAULT_N_CTX = 4096


def generate_api_key() -> str:
    """A fresh random key, shaped like LM Studio's tokens but marked as this gateway's."""
    return "sk-gw-" + secrets.token_urlsafe(24)


@dataclass
class GatewayConfig:
    """What to serve and how. ``api_key`` is required: the gateway never runs open."""

    api_key: str = field(repr=False)
    model_path: Path | None = None
    model_alias: str = DEFAULT_MODEL_ALIAS
    host: str = "127.0.0.1"
    port: int = 1234
    n_ctx: int = DEFAULT_N_CTX
    n_threads: int | None = None
    verbose: bool = False
    # Wall-clock limit of one request (generation is stopped there; the client gets a 504 if nothing was sent).
    max_request_seconds: float = DEFAULT_MAX_REQUEST_SECONDS
    # Set by run_in_background: a server whose parent died (a killed test run) must not linger.
    exit_with_parent: bool = False
    # A GGUF LoRA adapter applied at load time. None: the shipped tool adapter when serving the embedded model
    # and not ``bare``, none for any other model. The adapter is the default: measured better than the bare
    # model on unseen tools, restraint and two-step tasks, and right on every test invoice (docs/readme/eval.md).
    lora_path: Path | None = None
    bare: bool = False

    def resolved_model_path(self) -> Path:
        return check_model_path(self.model_path) if self.model_path else default_model_path()

    def resolved_lora_path(self) -> Path | None:
        if self.lora_path is not None:  # an adapter named explicitly is always applied
            return check_model_path(self.lora_path)
        if self.bare:
            return None
        return default_adapter_path() if self.model_path is None else None


def build_app(config: GatewayConfig) -> FastAPI:
    """llama_cpp.server's app (which loads the model) plus the key check, body checks and LM Studio routes.

    llama_cpp.server keeps its settings and model in module globals: one app per process.
    """
    if not config.api_key:
        raise ValueError("an API key is required")
    model_path = config.resolved_model_path()
    threads: dict[str, Any] = {"n_threads": config.n_threads} if config.n_threads else {}
    lora_path = config.resolved_lora_path()
    lora: dict[str, Any] = {"lora_path": str(lora_path)} if lora_path else {}
    model_settings = ModelSettings(
        model=str(model_path),
        **lora,
        model_alias=config.model_alias,
        n_ctx=config.n_ctx,
        verbose=config.verbose,
        # logprobs on chat completions need the logits of every position (llama_cpp refuses otherwise).
        logits_all=True,
        **threads,
    )
    # api_key here too: llama_cpp's own per-route check stays on behind ours.
    server_settings = ServerSettings(host=config.host, port=config.port, api_key=config.api_key)
    # llama_cpp's detokenize decodes strictly (ids ending mid-character were a 500): taken off its (module-level)
    # router before the app includes it, and served by ours (compat.detokenize_router) instead.
    llama_server_app.router.routes[:] = [
        route for route in llama_server_app.router.routes
        if not (isinstance(route, APIRoute) and route.path == DETOKENIZE_PATH)]
    app = create_app(server_settings=server_settings, model_settings=[model_settings])
    app.include_router(lmstudio_router(ServedModel(config.model_alias, model_path, config.n_ctx)))
    app.include_router(detokenize_router())
    # Generation stops at the next token once its request is cancelled (client gone, or past its time).
    proxy = llama_server_app._llama_proxy
    n_vocab = None
    if proxy is not None and proxy._current_model is not None:
        guard_llama(proxy._current_model)
        n_vocab = proxy._current_model.n_vocab()  # token ids out of this range crash llama.cpp: refused first
    # add_middleware wraps outermost last: the key check runs first, then the body checks.
    app.add_middleware(RequestBodyMiddleware, model_alias=config.model_alias,
                       max_request_seconds=config.max_request_seconds, n_vocab=n_vocab)
    app.add_middleware(BearerKeyMiddleware, api_key=config.api_key)
    _document_gateway_answers(app, n_vocab)
    return app


_OPENAI_ERROR = {
    "type": "object",
    "required": ["error"],
    "properties": {"error": {"type": "object", "required": ["message", "type"], "properties": {
        "message": {"type": "string"}, "type": {"type": "string"},
        "param": {"type": ["string", "null"]}, "code": {"type": ["string", "null"]}}}},
}


def _document_gateway_answers(app: FastAPI, n_vocab: int | None) -> None:
    """Add what the gateway's middlewares answer to the app's OpenAPI document: 401 on every route but
    ``/health`` (and the bearer scheme on LM Studio's routes too), 400/413/415/504 on the JSON routes, the
    vocabulary's range for token ids, and 404 (ours, or the router's ``{"detail": ...}``) on a model id."""
    generate = app.openapi

    def error(description: str) -> dict:
        return {"description": description,
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/OpenAIError"}}}}

    def openapi() -> dict:
        if app.openapi_schema:
            return app.openapi_schema
        spec = generate()
        spec.setdefault("components", {}).setdefault("schemas", {})["OpenAIError"] = _OPENAI_ERROR
        spec["components"].setdefault("securitySchemes", {})["HTTPBearer"] = {"type": "http", "scheme": "bearer"}
        for path, operations in spec.get("paths", {}).items():
            for method, operation in operations.items():
                responses = operation.setdefault("responses", {})
                if path != "/health":
                    operation.setdefault("security", [{"HTTPBearer": []}])
                    responses.setdefault("401", error("Missing, wrong or repeated key"))
                if path.startswith("/api/v0/models/"):
                    not_found = error("No such model (or a path the router cannot match: {\"detail\": ...})")
                    not_found["content"]["application/json"]["schema"] = {"anyOf": [
                        {"$ref": "#/components/schemas/OpenAIError"},
                        {"type": "object", "required": ["detail"], "properties": {"detail": {"type": "string"}}}]}
                    responses.setdefault("404", not_found)
                if method == "post" and path in REQUEST_MODELS:
                    responses.setdefault("400", error("Invalid JSON, body or grammar over the bounds"))
                    responses.setdefault("413", error("Body over the size limit"))
                    responses.setdefault("415", error("Content-Type is not application/json"))
                    responses.setdefault("504", error("The request's wall-clock limit passed"))
        tokens = spec["components"]["schemas"].get("DetokenizeInputRequest", {}).get("properties", {}).get("tokens")
        if n_vocab and isinstance(tokens, dict) and isinstance(tokens.get("items"), dict):
            tokens["items"].update(minimum=0, maximum=n_vocab - 1)
        app.openapi_schema = spec
        return spec

    app.openapi = openapi  # type: ignore[method-assign]


def _watch_parent(parent_pid: int) -> None:
    while os.getppid() == parent_pid:
        time.sleep(1.0)
    os.kill(os.getpid(), signal.SIGTERM)  # uvicorn shuts down cleanly on SIGTERM


class _Server(uvicorn.Server):
    """uvicorn's server, calling ``on_stopped`` at the end of its shutdown: uvicorn re-raises a captured
    SIGTERM after shutting down, which ends the process before any ``finally`` around ``run()``."""

    def __init__(self, config: uvicorn.Config, on_stopped: Callable[[], None] | None) -> None:
        super().__init__(config)
        self._on_stopped = on_stopped

    async def shutdown(self, sockets=None) -> None:
        try:
            await super().shutdown(sockets)
        finally:
            if self._on_stopped is not None:
                self._on_stopped()


def _when_started(server: uvicorn.Server, on_started: Callable[[], None]) -> None:
    while not server.started:
        if server.should_exit:
            return
        time.sleep(0.05)
    on_started()


def serve(config: GatewayConfig, on_started: Callable[[], None] | None = None,
          on_stopped: Callable[[], None] | None = None) -> None:
    """Load the model and serve until interrupted (SIGINT/SIGTERM end it cleanly).

    ``on_started`` runs (in a thread) once the server listens; ``on_stopped`` (idempotent) when it stops.
    """
    if config.exit_with_parent:
        threading.Thread(target=_watch_parent, args=(os.getppid(),), daemon=True, name="parent-watch").start()
    app = build_app(config)
    server = _Server(uvicorn.Config(app, host=config.host, port=config.port, log_level="info",
                                    timeout_graceful_shutdown=5, **uvicorn_limits()), on_stopped)
    install_access_log_redaction()  # after uvicorn configured logging: never a query string (a key?) in the log
    if on_started is not None:
        threading.Thread(target=_when_started, args=(server, on_started), daemon=True, name="started").start()
    try:
        server.run()
    finally:
        if on_stopped is not None:
            on_stopped()
